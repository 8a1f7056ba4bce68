// Shared set-up for the crypto tests: a list key in a temp data dir and gpg members, each in a GNUPGHOME of their own.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureListKey, parseMemberKey, type ListKey, type MemberKey, type OpenResult } from '../../src/crypto/index.ts';
import { createGpgHome, type GenerateOptions, type GpgHome, type GpgKey } from '../helpers/gpg.ts';

export interface GpgMember {
  gpg: GpgHome;
  key: GpgKey;
  address: string;
  memberKey: MemberKey;
  armoredPublic: string;
}

export async function createListKey(
  listName = 'xen-security-issues',
  domain = 'lists.example.org',
  algorithm: 'curve25519' | 'rsa4096' = 'curve25519',
): Promise<{ listKey: ListKey; dataDir: string; cleanup(): Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'embargo-crypto-'));
  const listKey = await ensureListKey({ dataDir, listName, domain, algorithm });
  return { listKey, dataDir, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
}

/** A member with a key in a GNUPGHOME of its own, so "only this recipient's key" is literally true. */
export async function createGpgMember(options: GenerateOptions, alsoImport: string[] = []): Promise<GpgMember> {
  const gpg = await createGpgHome();
  const key = await gpg.generateKey(options);
  for (const armored of alsoImport) await gpg.importKey(armored);
  const armoredPublic = await gpg.exportPublic(key.fingerprint);
  return { gpg, key, address: options.address, memberKey: await parseMemberKey(armoredPublic), armoredPublic };
}

/** A member whose key was made elsewhere (e.g. by ensureListKey) and imported, secret part included, into its own GNUPGHOME. */
export async function importGpgMember(address: string, armoredSecret: string, alsoImport: string[] = []): Promise<GpgMember> {
  const gpg = await createGpgHome();
  await gpg.importKey(armoredSecret);
  for (const armored of alsoImport) await gpg.importKey(armored);
  const colons = (await gpg.run(['--with-colons', '--list-secret-keys'])).stdout.toString('utf8');
  const fingerprints = colons
    .split('\n')
    .filter((line) => line.startsWith('fpr:'))
    .map((line) => line.split(':')[9]);
  const armoredPublic = await gpg.exportPublic(fingerprints[0]);
  return {
    gpg,
    key: { fingerprint: fingerprints[0], address, encryptionSubkey: fingerprints[1] },
    address,
    memberKey: await parseMemberKey(armoredPublic),
    armoredPublic,
  };
}

/** Splits a multipart body by its boundary (test-side, independent of src/crypto/mime.ts). */
export function partsOf(message: string, boundary: string): string[] {
  const pieces = message.split(`--${boundary}`);
  return pieces.slice(1, -1).map((piece) => piece.replace(/^\r?\n/, '').replace(/\r?\n$/, ''));
}

export function boundaryOf(message: string): string {
  const match = /boundary="([^"]+)"/.exec(message);
  if (!match) throw new Error('no boundary');
  return match[1];
}

/** A PGP/MIME post from someone@example.org around an armored message. */
export function pgpMime(armored: string): Buffer {
  return Buffer.from(
    'From: someone@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="enc"\r\n\r\n' +
      '--enc\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
      `--enc\r\nContent-Type: application/octet-stream\r\n\r\n${armored}\r\n--enc--\r\n`,
  );
}

export function failureCode(result: OpenResult): string {
  return result.ok ? 'ok' : result.failure.code;
}
