// The cleartext signature framework (RFC 4880 7.1) on bytes: splits a clearsigned block into the exact signed text and its signature.
//
// Why not openpgp.js's readCleartextMessage: it takes a JavaScript string and hashes its UTF-8 encoding, so a
// Latin-1 or Windows-1252 advisory (valid for gpg, which hashes the bytes) can never verify there. Everything here
// works on latin1 strings, which map bytes to characters one to one, and hands openpgp.js bytes.

export const BEGIN_SIGNED = '-----BEGIN PGP SIGNED MESSAGE-----';
const BEGIN_SIGNATURE = '-----BEGIN PGP SIGNATURE-----';
export const END_SIGNATURE = '-----END PGP SIGNATURE-----';

export interface ClearsignedBlock {
  /** What the signature covers: dash-escaping undone, trailing blanks removed, CRLF line ends, no final line end. */
  signedText: Buffer;
  armoredSignature: string;
  /** The block from its BEGIN line through the END line, as it appears in the input. */
  length: number;
}

/** The first clearsigned block in `data`, or null when it has no complete signature. */
export function readClearsigned(data: Buffer): ClearsignedBlock | null {
  const start = data.indexOf(BEGIN_SIGNED);
  if (start === -1) return null;
  const signatureStart = data.indexOf(BEGIN_SIGNATURE, start);
  const end = signatureStart === -1 ? -1 : data.indexOf(END_SIGNATURE, signatureStart);
  if (end === -1) return null;
  const lines = data.toString('latin1', start, signatureStart).split('\n').map((line) => line.replace(/\r$/, ''));
  // Line 0 is the BEGIN line, then armor headers (Hash: ...) up to the first empty line, then the text.
  const blank = lines.indexOf('', 1);
  if (blank === -1) return null;
  const text = lines.slice(blank + 1);
  // The line end before the signature's BEGIN line belongs to the framework, not to the text (RFC 4880 7.1).
  if (text.length > 0 && text[text.length - 1] === '') text.pop();
  const signed = text.map((line) => (line.startsWith('- ') ? line.slice(2) : line).replace(/[ \t]+$/, '')).join('\r\n');
  return {
    signedText: Buffer.from(signed, 'latin1'),
    armoredSignature: data.toString('latin1', signatureStart, end + END_SIGNATURE.length),
    length: end + END_SIGNATURE.length - start,
  };
}

/** Whether the text holds nothing but one clearsigned block (so the signature covers all of it). */
export function onlyClearsigned(data: Buffer): boolean {
  const text = data.toString('latin1').trim();
  return text.startsWith(BEGIN_SIGNED) && text.endsWith(END_SIGNATURE);
}
