// decryptFromArchive falls back to a list's replaced keys, unlocked with the same passphrase setting as the current key.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { decryptFromArchive, encryptForArchive, ensureListKey, importListKey, listKeyFile } from '../../src/crypto/index.ts';

const root = mkdtempSync(join(tmpdir(), 'embargo-replaced-keys-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it('a passphrase-protected list key, rotated: entries for the old key and the new key both decrypt; other lists’ old keys are not used', async () => {
  const passphrase = 'correct horse battery staple';
  const server = join(root, 'server');
  const elsewhere = join(root, 'elsewhere');
  const oldKey = await ensureListKey({ dataDir: server, listName: 'sharing', domain: 'lists.example.org', passphrase });
  const oldEntry = await encryptForArchive(oldKey, Buffer.from('before the rotation'));

  // The new key, protected with the same passphrase, made elsewhere and imported here.
  await ensureListKey({ dataDir: elsewhere, listName: 'sharing', domain: 'lists.example.org', passphrase });
  const newKey = await importListKey({ dataDir: server, listName: 'sharing', armoredSecretKey: readFileSync(listKeyFile(elsewhere, 'sharing'), 'utf8'), passphrase, replace: true });
  expect(newKey.fingerprint).not.toBe(oldKey.fingerprint);
  const newEntry = await encryptForArchive(newKey, Buffer.from('after the rotation'));

  expect((await decryptFromArchive(newKey, oldEntry)).toString()).toBe('before the rotation');
  expect((await decryptFromArchive(newKey, newEntry)).toString()).toBe('after the rotation');

  // Another list on the same server never reads this list's replaced keys.
  const other = await ensureListKey({ dataDir: server, listName: 'other', domain: 'lists.example.org', passphrase });
  await expect(decryptFromArchive(other, oldEntry)).rejects.toThrow();
});
