// The MIME the crypto layer writes: CRLF canonical form for verification, a post's content entity, and a post rebuilt from inline-encrypted parts and files.
import { randomBytes } from 'node:crypto';
import type { MimeEntity } from '../mime/read.ts';

const LF = 0x0a;
const CR = 0x0d;

/** Line ends to CRLF, as RFC 3156 5 requires before a multipart/signed part is verified. */
export function canonicalCrlf(data: Buffer): Buffer {
  let bareLf = 0;
  for (let index = data.indexOf(LF); index !== -1; index = data.indexOf(LF, index + 1)) {
    if (index === 0 || data[index - 1] !== CR) bareLf += 1;
  }
  if (bareLf === 0) return data;
  const out = Buffer.allocUnsafe(data.length + bareLf);
  let written = 0;
  let from = 0;
  for (let index = data.indexOf(LF); index !== -1; index = data.indexOf(LF, index + 1)) {
    if (index === 0 || data[index - 1] !== CR) {
      written += data.copy(out, written, from, index);
      out[written++] = CR;
      from = index;
    }
  }
  written += data.copy(out, written, from);
  return out.subarray(0, written);
}

/** Headers that describe the content itself (kept when a message body becomes an inner entity). */
export function isContentHeader(key: string): boolean {
  return key.startsWith('content-') || key === 'mime-version';
}

/** The entity without its transport headers: content headers as written, a blank line, the body unchanged. */
export function contentEntity(entity: MimeEntity): Buffer {
  const kept = entity.headers.filter((header) => isContentHeader(header.key) && header.key !== 'mime-version');
  const chunks: Buffer[] = kept.map((header) => (header.raw.at(-1) === LF ? header.raw : Buffer.concat([header.raw, Buffer.from('\r\n')])));
  const lineBreak = entity.raw.includes('\r\n') ? '\r\n' : '\n';
  chunks.push(Buffer.from(lineBreak), entity.body);
  return Buffer.concat(chunks);
}

/** multipart/mixed over whole entities, for a post rebuilt from inline-encrypted parts. */
export function mixedOf(parts: Buffer[]): Buffer {
  const boundary = `embargo-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [Buffer.from(`Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n`)];
  for (const part of parts) chunks.push(Buffer.from(`--${boundary}\r\n`), part, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

/** A file as an attachment entity, base64 so its bytes arrive unchanged. */
export function fileEntity(name: string, bytes: Buffer): Buffer {
  const quoted = name.replace(/["\\\r\n]/g, '_');
  const encoded = bytes.toString('base64').replace(/.{1,76}/g, '$&\r\n');
  return Buffer.from(
    `Content-Type: application/octet-stream; name="${quoted}"\r\nContent-Disposition: attachment; filename="${quoted}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${encoded}`,
  );
}
