// Checksummed attachments, the Xen Security Advisory shape: a clearsigned text that lists the sha256sum/sha512sum of the files beside it.
import { createHash } from 'node:crypto';
import type { AttachmentCheck } from './index.ts';

export interface Attachment {
  /** The file name as sent, or a description of the part when it has none. */
  name: string;
  /** The decoded bytes (transfer encoding removed; decrypted, for inline-encrypted attachments). */
  bytes: Buffer;
}

/**
 * Which attachments the signed text vouches for: an attachment counts when the hex SHA-256 or SHA-512 of its exact bytes
 * appears in the signed text as a whole word (as `sha256sum` prints it). The file name beside the digest does not
 * matter: mail clients rename attachments, and the digest alone already binds the bytes.
 */
export function checkAttachments(signedText: Buffer, attachments: Attachment[]): AttachmentCheck[] {
  const words = new Set((signedText.toString('latin1').toLowerCase().match(/\b[0-9a-f]+\b/g) ?? []).filter((word) => word.length === 64 || word.length === 128));
  return attachments.map((attachment, index) => {
    const sha256 = createHash('sha256').update(attachment.bytes).digest('hex');
    const sha512 = createHash('sha512').update(attachment.bytes).digest('hex');
    const covered = words.has(sha512) ? 'sha512' : words.has(sha256) ? 'sha256' : null;
    return { name: attachment.name, position: index + 1, size: attachment.bytes.length, sha256, covered };
  });
}
