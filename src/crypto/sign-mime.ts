// List-signed MIME: an RFC 3156 multipart/signed entity with a detached signature by the list key.
import * as openpgp from 'openpgp';
import type { ListKey } from './index.ts';
import { unlockedListKey } from './list-keys.ts';
import { literalOf } from './literal.ts';
import { boundaryFor, crlf, headerLines } from './mime-writing.ts';
import { compatibleConfig } from './policy.ts';

const SIGNED_PREAMBLE = 'This is an OpenPGP/MIME signed message (RFC 4880 and 3156)';

const MICALG: Partial<Record<number, string>> = {
  [openpgp.enums.hash.sha256]: 'pgp-sha256',
  [openpgp.enums.hash.sha384]: 'pgp-sha384',
  [openpgp.enums.hash.sha512]: 'pgp-sha512',
  [openpgp.enums.hash.sha224]: 'pgp-sha224',
  [openpgp.enums.hash.sha1]: 'pgp-sha1',
};

/**
 * RFC 3156 multipart/signed by the list key. `content` is a MIME entity (its own Content-* headers, blank line,
 * body) and should be 7-bit safe (quoted-printable or base64 for anything else), as RFC 3156 5 asks.
 */
export async function signMime(options: { listKey: ListKey; content: Buffer; headers: Array<[string, string]> }): Promise<Buffer> {
  const list = unlockedListKey(options.listKey);
  const content = Buffer.from(crlf(options.content.toString('latin1')), 'latin1');
  const signatureArmored = await openpgp.sign({
    message: await literalOf(content),
    signingKeys: list.privateKey,
    detached: true,
    format: 'armored',
    config: compatibleConfig,
  });
  const signature = await openpgp.readSignature({ armoredSignature: signatureArmored });
  // micalg must name the hash the signature really used (RFC 3156 5), so it is read back, not assumed.
  const hashAlgorithm = signature.packets[0]?.hashAlgorithm;
  const micalg = (hashAlgorithm !== null && hashAlgorithm !== undefined ? MICALG[hashAlgorithm] : undefined) ?? 'pgp-sha512';
  const boundary = boundaryFor('embargo-signed', content);
  const head =
    headerLines(options.headers, true) +
    'MIME-Version: 1.0\r\n' +
    `Content-Type: multipart/signed; micalg=${micalg};\r\n protocol="application/pgp-signature";\r\n boundary="${boundary}"\r\n` +
    '\r\n' +
    `${SIGNED_PREAMBLE}\r\n` +
    `--${boundary}\r\n`;
  const signaturePart =
    `\r\n--${boundary}\r\n` +
    'Content-Type: application/pgp-signature; name="signature.asc"\r\n' +
    'Content-Description: OpenPGP digital signature\r\n' +
    'Content-Disposition: attachment; filename="signature.asc"\r\n' +
    '\r\n' +
    crlf(signatureArmored) +
    `\r\n--${boundary}--\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), content, Buffer.from(signaturePart, 'latin1')]);
}
