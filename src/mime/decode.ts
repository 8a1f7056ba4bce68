// Undoes a part's Content-Transfer-Encoding, for every reader that needs a part's bytes (crypto, bounces).
import libqp from 'libqp';
import type { MimeEntity } from './read.ts';

/** What decoding needs of a part: its body as received and its Content-Transfer-Encoding, lower-cased. */
export type TransferEncoded = Pick<MimeEntity, 'body' | 'transferEncoding'>;

/** The body without its transfer encoding; 7bit, 8bit, binary and unknown encodings are returned unchanged. */
export function decodeBody(entity: TransferEncoded): Buffer {
  switch (entity.transferEncoding) {
    case 'base64':
      // Buffer's decoder stops at the first character outside the alphabet, so line breaks and junk go first.
      return Buffer.from(entity.body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
    case 'quoted-printable':
      return libqp.decode(entity.body);
    default:
      return entity.body;
  }
}
