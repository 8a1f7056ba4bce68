// Web Key Directory (draft-koch-openpgp-webkey-service): z-base-32 of SHA-1 of the local part, and binary keys.
import { createHash } from 'node:crypto';

const zBase32Alphabet = 'ybndrfg8ejkmcpqxot1uwisza345h769';

export function zBase32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += zBase32Alphabet[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += zBase32Alphabet[(buffer << (5 - bits)) & 31];
  return out;
}

/** The hu/ path component for a local part (ASCII lower-cased, as GnuPG does). */
export function wkdHash(localPart: string): string {
  const lowered = localPart.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
  return zBase32(createHash('sha1').update(lowered, 'utf8').digest());
}

/** The binary transferable key inside an ASCII-armored block (WKD serves binary, not armor). */
export function dearmor(armored: string): Buffer | null {
  const lines = armored.replace(/\r/g, '').split('\n');
  const begin = lines.findIndex((line) => /^-----BEGIN PGP [A-Z ]+-----$/.test(line.trim()));
  if (begin < 0) return null;
  let index = begin + 1;
  // Armor headers (Comment:, Version:) run until the first blank line.
  while (index < lines.length && lines[index]!.trim() !== '') index++;
  const data: string[] = [];
  for (index++; index < lines.length; index++) {
    const line = lines[index]!.trim();
    if (line.startsWith('-----END ') || line.startsWith('=')) break;
    data.push(line);
  }
  const bytes = Buffer.from(data.join(''), 'base64');
  return bytes.length > 0 ? bytes : null;
}
