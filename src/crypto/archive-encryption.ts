// Archive entries at rest: encrypted to the list's own key, and read back with it or with a key the list had before a rotation.
import * as openpgp from 'openpgp';
import type { ListKey } from './index.ts';
import { replacedListKeys, unlockedListKey } from './list-keys.ts';
import { collected, literalMessage } from './literal.ts';
import { compatibleConfig } from './policy.ts';

/** Encrypts bytes to the list's own key, so a copied database file leaks no embargoed text. */
export async function encryptForArchive(listKey: ListKey, data: Buffer): Promise<Buffer> {
  const list = unlockedListKey(listKey);
  const encrypted = await openpgp.encrypt({
    message: await literalMessage([data]),
    encryptionKeys: list.publicKey,
    format: 'binary',
    config: compatibleConfig,
  });
  // Not a copy of the whole: the archive copy of a big post is held until the pipeline commits.
  return collected(encrypted as Uint8Array | ReadableStream<Uint8Array>);
}

/**
 * An archive entry's plaintext. Entries stored before a key rotation are encrypted to the key the list had then:
 * when the entry is not for the current key, the list's replaced keys (kept by `list-key import`) are tried too.
 */
export async function decryptFromArchive(listKey: ListKey, data: Buffer): Promise<Buffer> {
  const list = unlockedListKey(listKey);
  const message = await openpgp.readMessage({ binaryMessage: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  const recipients = message.getEncryptionKeyIDs().map((keyId) => keyId.toHex());
  const decryptionKeys = [list.privateKey];
  if (!recipients.some((keyId) => list.decryptionKeyIds.has(keyId))) {
    for (const older of await replacedListKeys(listKey)) decryptionKeys.push(older.privateKey);
  }
  const { data: plain } = await openpgp.decrypt({ message, decryptionKeys, format: 'binary' });
  return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
}
