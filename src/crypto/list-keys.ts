// List key pairs: generated or imported into dataDir/keys (0600), unlocked once and kept in memory; the private part never leaves src/crypto.
import { chmod, mkdir, open, readFile, readdir, rename, writeFile, access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as openpgp from 'openpgp';
import type { ListKey } from './index.ts';
import { WEAK_SELF_SIGNATURE_HASH, compatibleConfig, keyGeneration, refreshSignaturesConfig } from './policy.ts';

/** Everything src/crypto needs to act as one list; looked up by the fingerprint in a ListKey. */
export interface UnlockedListKey {
  privateKey: openpgp.PrivateKey;
  publicKey: openpgp.PublicKey;
  /** Key ids (hex) of the subkeys that can decrypt, to recognise messages for this list cheaply. */
  decryptionKeyIds: Set<string>;
}

const unlocked = new Map<string, UnlockedListKey>();

export function listKeyFile(dataDir: string, listName: string): string {
  return join(dataDir, 'keys', `${listName}.secret.asc`);
}

/** The unlocked key pair behind a ListKey from ensureListKey/importListKey in this process. */
export function unlockedListKey(listKey: ListKey): UnlockedListKey {
  const found = unlocked.get(listKey.fingerprint);
  if (!found) throw new Error(`list key ${listKey.fingerprint} for ${listKey.listName} is not loaded; call ensureListKey first`);
  return found;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

async function ensureKeyDirectory(dataDir: string): Promise<string> {
  const directory = join(dataDir, 'keys');
  await mkdir(directory, { recursive: true, mode: 0o700 });
  await chmod(directory, 0o700);
  return directory;
}

/** Writes through a temporary file so a crash never leaves half a key behind. */
async function writePrivate(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  const handle = await open(temporary, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.chmod(0o600);
    // On disk before the rename makes it the key: without it, a crash or a file system error soon after the first
    // start left an empty key file (delayed allocation), and the daemon could not start again.
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
  const directory = await open(dirname(file), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/** Where a loaded list key lives, so the keys it replaced can be found when an older archive entry needs one. */
interface KeyOrigin {
  dataDir: string;
  listName: string;
  passphrase: string | undefined;
}

const origins = new Map<string, KeyOrigin>();
const replaced = new Map<string, Promise<UnlockedListKey[]>>();

async function unlockPair(listName: string, armored: string, passphrase: string | undefined): Promise<UnlockedListKey> {
  let privateKey = await openpgp.readPrivateKey({ armoredKey: armored });
  if (!privateKey.isDecrypted()) {
    if (passphrase === undefined) throw new Error(`list key for ${listName} is passphrase-protected but no passphrase is configured`);
    privateKey = await openpgp.decryptKey({ privateKey, passphrase });
  }
  // Fails early (and clearly) when an imported key cannot do the two jobs a list key has.
  await privateKey.getSigningKey();
  const decryptionKeys = await privateKey.getDecryptionKeys();
  if (decryptionKeys.length === 0) throw new Error(`list key for ${listName} has no decryption subkey`);
  return {
    privateKey,
    publicKey: privateKey.toPublic(),
    decryptionKeyIds: new Set(decryptionKeys.map((key) => key.getKeyID().toHex())),
  };
}

async function unlock(origin: KeyOrigin, armored: string): Promise<ListKey> {
  const pair = await unlockPair(origin.listName, armored, origin.passphrase);
  const fingerprint = pair.privateKey.getFingerprint().toUpperCase();
  unlocked.set(fingerprint, pair);
  origins.set(fingerprint, origin);
  return { listName: origin.listName, fingerprint, armoredPublicKey: pair.publicKey.armor() };
}

/**
 * The keys this list used before a rotation (`NAME.secret.asc.replaced-TIME` beside the current key), newest first,
 * unlocked with the same passphrase setting; read once, when an archive entry is not for the current key. A file
 * that cannot be read or unlocked is left out: entries encrypted to it stay unreadable, as they were before.
 */
export function replacedListKeys(listKey: ListKey): Promise<UnlockedListKey[]> {
  const origin = origins.get(listKey.fingerprint);
  if (!origin) return Promise.resolve([]);
  let found = replaced.get(listKey.fingerprint);
  if (!found) {
    found = loadReplaced(origin);
    replaced.set(listKey.fingerprint, found);
  }
  return found;
}

async function loadReplaced(origin: KeyOrigin): Promise<UnlockedListKey[]> {
  const directory = join(origin.dataDir, 'keys');
  const prefix = `${origin.listName}.secret.asc.replaced-`;
  let names: string[];
  try {
    names = (await readdir(directory)).filter((name) => name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length)));
  } catch {
    return [];
  }
  names.sort((a, b) => Number(b.slice(prefix.length)) - Number(a.slice(prefix.length)));
  const keys: UnlockedListKey[] = [];
  for (const name of names) {
    try {
      keys.push(await unlockPair(origin.listName, await readFile(join(directory, name), 'utf8'), origin.passphrase));
    } catch {
      continue;
    }
  }
  return keys;
}

const pending = new Map<string, Promise<ListKey>>();

export async function ensureListKey(options: {
  dataDir: string;
  listName: string;
  domain: string;
  algorithm?: 'curve25519' | 'rsa4096';
  passphrase?: string;
}): Promise<ListKey> {
  const file = listKeyFile(options.dataDir, options.listName);
  // Two callers starting the same list at once must not generate two different keys.
  const inFlight = pending.get(file);
  if (inFlight) return inFlight;
  const origin: KeyOrigin = { dataDir: options.dataDir, listName: options.listName, passphrase: options.passphrase };
  const work = (async () => {
    const directory = await ensureKeyDirectory(options.dataDir);
    if (await exists(file)) {
      await chmod(file, 0o600);
      return unlock(origin, await readFile(file, 'utf8'));
    }
    const { listName, domain } = options;
    const userIDs = [
      { name: `${listName} mailing list`, email: `${listName}@${domain}` },
      { name: `${listName} mailing list requests`, email: `${listName}-request@${domain}` },
      { name: `${listName} mailing list owners`, email: `${listName}-owner@${domain}` },
    ];
    const generated = await openpgp.generateKey({
      ...keyGeneration(options.algorithm ?? 'curve25519'),
      userIDs,
      passphrase: options.passphrase,
      format: 'armored',
      config: compatibleConfig,
    });
    await writePrivate(file, generated.privateKey);
    await writeFile(join(directory, `${listName}.public.asc`), generated.publicKey, { mode: 0o644 });
    return unlock(origin, generated.privateKey);
  })();
  pending.set(file, work);
  try {
    return await work;
  } finally {
    pending.delete(file);
  }
}

/**
 * Reads a list key that exists already, writing nothing (no directory made, no mode tightened): for threads that
 * only use keys the daemon loaded, which must work on a data disk that turned read-only.
 */
export async function readListKey(options: { dataDir: string; listName: string; passphrase?: string }): Promise<ListKey> {
  const origin: KeyOrigin = { dataDir: options.dataDir, listName: options.listName, passphrase: options.passphrase };
  return unlock(origin, await readFile(listKeyFile(options.dataDir, options.listName), 'utf8'));
}

/**
 * A signing and decryption key pair held only in this process and never written anywhere: a stand-in poster that no
 * list or member trusts (the daemon's start-up rehearsal signs its post with one). forgetInMemoryKey drops it.
 */
export async function generateInMemoryKey(options: { name: string; address: string }): Promise<ListKey> {
  const generated = await openpgp.generateKey({ ...keyGeneration('curve25519'), userIDs: [{ email: options.address }], format: 'armored', config: compatibleConfig });
  const pair = await unlockPair(options.name, generated.privateKey, undefined);
  const fingerprint = pair.privateKey.getFingerprint().toUpperCase();
  unlocked.set(fingerprint, pair);
  return { listName: options.name, fingerprint, armoredPublicKey: pair.publicKey.armor() };
}

export function forgetInMemoryKey(key: ListKey): void {
  if (!origins.has(key.fingerprint)) unlocked.delete(key.fingerprint);
}

/** Moves a list here from another server with its existing key (`embargo list-key import NAME FILE`). */
export async function importListKey(options: {
  dataDir: string;
  listName: string;
  armoredSecretKey: string;
  passphrase?: string;
  /** Replace a key this server already has for the list (the old file is kept beside it). */
  replace?: boolean;
}): Promise<ListKey> {
  const directory = await ensureKeyDirectory(options.dataDir);
  const file = listKeyFile(options.dataDir, options.listName);
  // Unlock first: a wrong passphrase or a public-only key must not replace a working key.
  const listKey = await unlock({ dataDir: options.dataDir, listName: options.listName, passphrase: options.passphrase }, options.armoredSecretKey);
  if (await exists(file)) {
    if (!options.replace) throw new Error(`list ${options.listName} already has a key in ${file}; pass replace to overwrite`);
    await rename(file, `${file}.replaced-${Date.now()}`);
  }
  // Read again at the next need: the file just kept is one of them now.
  replaced.delete(listKey.fingerprint);
  await writePrivate(file, options.armoredSecretKey);
  await writeFile(join(directory, `${options.listName}.public.asc`), listKey.armoredPublicKey, { mode: 0o644 });
  return listKey;
}

/**
 * A fresh v4 key pair for a member address, for tests and benchmarks that need many keys without GnuPG
 * (the daemon itself never makes member keys).
 */
export async function generateMemberKey(options: {
  address: string;
  algorithm?: 'curve25519' | 'rsa3072' | 'rsa4096';
}): Promise<{ armoredPublicKey: string; armoredSecretKey: string }> {
  const userIDs = [{ email: options.address }];
  const generated = await openpgp.generateKey({ ...keyGeneration(options.algorithm ?? 'curve25519'), userIDs, format: 'armored', config: compatibleConfig });
  return { armoredPublicKey: generated.publicKey, armoredSecretKey: generated.privateKey };
}

/**
 * Self-signatures of a list key that use SHA-1 (the newest per user ID and per subkey binding), described for admins.
 * Sequoia (sq) rejects SHA-1 self-signatures, so members using it could verify no list signature at all.
 */
export async function sha1SelfSignatures(armoredKey: string): Promise<string[]> {
  const key = await openpgp.readKey({ armoredKey });
  const newest = <T extends { created: Date | null }>(signatures: T[]): T | undefined =>
    [...signatures].sort((a, b) => (b.created?.getTime() ?? 0) - (a.created?.getTime() ?? 0))[0];
  const weak: string[] = [];
  for (const user of key.users) {
    const signature = newest(user.selfCertifications);
    if (user.userID && signature?.hashAlgorithm === WEAK_SELF_SIGNATURE_HASH) weak.push(`user ID "${user.userID.userID}"`);
  }
  for (const subkey of key.subkeys) {
    const signature = newest(subkey.bindingSignatures);
    if (signature?.hashAlgorithm === WEAK_SELF_SIGNATURE_HASH) weak.push(`subkey ${subkey.getKeyID().toHex().toUpperCase()}`);
  }
  return weak;
}

/**
 * `embargo list-key refresh-signatures`: the same key pair (same fingerprint, same subkeys) with every user ID and
 * subkey binding signed again with SHA-512. The file before is kept beside it as NAME.secret.asc.before-refresh-TIME.
 */
export async function refreshListKeySignatures(options: { dataDir: string; listName: string; passphrase?: string }): Promise<{ fingerprint: string; replacedSha1: string[] }> {
  const file = listKeyFile(options.dataDir, options.listName);
  const armored = await readFile(file, 'utf8');
  let privateKey = await openpgp.readPrivateKey({ armoredKey: armored });
  const replacedSha1 = await sha1SelfSignatures(privateKey.toPublic().armor());
  if (!privateKey.isDecrypted()) {
    if (options.passphrase === undefined) throw new Error(`list key for ${options.listName} is passphrase-protected but no passphrase is configured`);
    privateKey = await openpgp.decryptKey({ privateKey, passphrase: options.passphrase });
  }
  const userIDs = privateKey.users
    .map((user) => user.userID)
    .filter((userID): userID is NonNullable<typeof userID> => userID !== null)
    .map((userID) => ({ name: userID.name, email: userID.email, comment: userID.comment }));
  const expires = await privateKey.getExpirationTime();
  const keyExpirationTime = expires instanceof Date ? Math.max(1, Math.round((expires.getTime() - privateKey.getCreationTime().getTime()) / 1000)) : 0;
  const refreshed = await openpgp.reformatKey({
    privateKey,
    userIDs,
    passphrase: options.passphrase,
    keyExpirationTime,
    format: 'armored',
    config: refreshSignaturesConfig,
  });
  const fingerprint = privateKey.getFingerprint().toUpperCase();
  const check = await openpgp.readKey({ armoredKey: refreshed.publicKey });
  // reformatKey must never hand back a different key: members' keyrings and the archive depend on this one.
  if (check.getFingerprint().toUpperCase() !== fingerprint || check.subkeys.length !== privateKey.subkeys.length) {
    throw new Error('re-signing changed the key; nothing was written');
  }
  const left = await sha1SelfSignatures(refreshed.publicKey);
  if (left.length > 0) throw new Error(`re-signing left SHA-1 signatures on ${left.join(', ')}; nothing was written`);
  await writePrivate(`${file}.before-refresh-${Date.now()}`, armored);
  await writePrivate(file, refreshed.privateKey);
  await writeFile(join(dirname(file), `${options.listName}.public.asc`), refreshed.publicKey, { mode: 0o644 });
  return { fingerprint, replacedSha1 };
}
