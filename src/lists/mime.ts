// Builds the small MIME entities the list writes itself: text parts, multipart/mixed wrappers, attached originals.
import { randomBytes } from 'node:crypto';
import * as qp from 'nodemailer/lib/qp';

function boundary(): string {
  return `embargo-${randomBytes(12).toString('hex')}`;
}

/** A text/plain entity; quoted-printable keeps long or non-ASCII lines intact through any relay. */
export function textEntity(text: string): Buffer {
  const normalized = text.replace(/\r?\n/g, '\r\n');
  const ascii = /^[\x20-\x7e\r\n\t]*$/.test(normalized) && normalized.split('\r\n').every((line) => line.length <= 76);
  if (ascii) {
    return Buffer.from(`Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${normalized}\r\n`);
  }
  return Buffer.from(
    `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${qp.wrap(qp.encode(normalized), 76)}\r\n`,
  );
}

/** An attached message (message/rfc822), e.g. the original of a rejected post for the admins. */
export function attachedMessage(raw: Buffer, filename = 'original.eml'): Buffer {
  // 7bit cannot be promised for arbitrary mail, so the original travels base64-encoded, exactly as received.
  const base64 = raw.toString('base64');
  // Lines of 76 by slicing: a regex replace over a big original took tens of milliseconds.
  const lines: string[] = [];
  for (let at = 0; at < base64.length; at += 76) lines.push(base64.slice(at, at + 76));
  const encoded = lines.length > 0 ? `${lines.join('\r\n')}\r\n` : '';
  return Buffer.concat([
    Buffer.from(
      `Content-Type: application/octet-stream; name="${filename}"\r\nContent-Disposition: attachment; filename="${filename}"\r\nContent-Transfer-Encoding: base64\r\n\r\n`,
    ),
    Buffer.from(encoded),
  ]);
}

/** A text file attachment (UTF-8), e.g. an archive index. */
export function textAttachment(text: string, filename: string): Buffer {
  const encoded = Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'utf8').toString('base64').replace(/.{1,76}/g, '$&\r\n');
  return Buffer.from(
    `Content-Type: text/plain; charset=utf-8; name="${filename}"\r\nContent-Disposition: attachment; filename="${filename}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${encoded}`,
  );
}

/** An attached OpenPGP public key. */
export function attachedKey(armored: string, filename: string): Buffer {
  return Buffer.from(
    `Content-Type: application/pgp-keys; name="${filename}"\r\nContent-Disposition: attachment; filename="${filename}"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${armored.replace(/\r?\n/g, '\r\n')}\r\n`,
  );
}

/** multipart/mixed over whole entities (each with its own header block). */
export function mixedEntity(parts: Buffer[]): Buffer {
  const separator = boundary();
  const chunks: Buffer[] = [Buffer.from(`Content-Type: multipart/mixed; boundary="${separator}"\r\n\r\n`)];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${separator}\r\n`), part, Buffer.from(part.subarray(-2).toString() === '\r\n' ? '' : '\r\n'));
  }
  chunks.push(Buffer.from(`--${separator}--\r\n`));
  return Buffer.concat(chunks);
}
