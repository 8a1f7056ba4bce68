// Resolves each list member's public key from `key:` (a file) or `fingerprint:` (a key in config/keys/), reporting problems at the member's line.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import * as cryptoApi from '../crypto/index.ts';
import type { MemberSettings } from './schema.ts';
import type { SourceFile } from './source.ts';
import type { ConfigError, Member } from './types.ts';
import { errorMessage } from '../util/errors.ts';

type FingerprintsOf = (armored: string) => Promise<string[]>;

interface IndexedKey {
  file: string;
  armored: string;
  keyCount: number;
}

export interface KeyIndex {
  /** False while src/crypto does not provide fingerprintsInArmored: then `fingerprint:` members cannot be resolved. */
  canReadFingerprints: boolean;
  byFingerprint: Map<string, IndexedKey>;
}

const publicBlock = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const secretBlock = '-----BEGIN PGP PRIVATE KEY BLOCK-----';

// Parsing a key costs a few milliseconds; hot reload re-reads every key file, so results are kept by content hash.
const fingerprintCache = new Map<string, Promise<string[]>>();

function fingerprintFunction(): FingerprintsOf | undefined {
  // The crypto module is written in parallel; until its implementation exists the name is only declared.
  const candidate = (cryptoApi as Partial<typeof cryptoApi>).fingerprintsInArmored;
  return typeof candidate === 'function' ? candidate : undefined;
}

/** Fingerprints (40 upper-case hex) of the keys in `armored`; a rejected promise means it is not a readable key. */
async function fingerprintsOf(armored: string): Promise<string[]> {
  const read = fingerprintFunction();
  if (!read) throw new Error('the crypto module does not provide fingerprintsInArmored yet');
  const digest = createHash('sha256').update(armored).digest('hex');
  let pending = fingerprintCache.get(digest);
  if (!pending) {
    pending = read(armored).then((list) => list.map((fingerprint) => fingerprint.toUpperCase()));
    fingerprintCache.set(digest, pending);
    pending.catch(() => fingerprintCache.delete(digest));
    if (fingerprintCache.size > 10_000) fingerprintCache.delete(fingerprintCache.keys().next().value as string);
  }
  return pending;
}

/** Reads config/keys/*.asc once per load. A missing keys/ directory is fine (every member may use `key:` elsewhere). */
export async function loadKeyIndex(directory: string, errors: ConfigError[]): Promise<KeyIndex> {
  const index: KeyIndex = { canReadFingerprints: fingerprintFunction() !== undefined, byFingerprint: new Map() };
  let entries: string[];
  try {
    entries = (await readdir(directory)).filter((entry) => entry.endsWith('.asc') && !entry.startsWith('.')).sort();
  } catch {
    return index;
  }
  for (const entry of entries) {
    const file = path.join(directory, entry);
    const armored = await readFile(file, 'utf8').catch(() => null);
    if (armored === null) continue;
    if (armored.includes(secretBlock)) {
      errors.push({ file, line: lineOf(armored, secretBlock), column: 1, reason: 'this file holds a SECRET key; config/keys/ must hold members\' public keys only (export with gpg --export --armor)' });
      continue;
    }
    if (!index.canReadFingerprints) continue;
    let fingerprints: string[];
    try {
      fingerprints = await fingerprintsOf(armored);
    } catch (failure) {
      errors.push({ file, line: 1, column: 1, reason: `not a readable OpenPGP public key (${shortMessage(failure)})` });
      continue;
    }
    if (fingerprints.length === 0) {
      errors.push({ file, line: 1, column: 1, reason: 'not a readable OpenPGP public key (every .asc file in keys/ must hold public keys)' });
      continue;
    }
    for (const fingerprint of fingerprints) {
      if (!index.byFingerprint.has(fingerprint)) index.byFingerprint.set(fingerprint, { file, armored, keyCount: fingerprints.length });
    }
  }
  return index;
}

export async function resolveMemberKeys(
  source: SourceFile,
  settings: MemberSettings[],
  keyIndex: KeyIndex,
  configRoot: string,
  errors: ConfigError[],
): Promise<Member[]> {
  const base = path.dirname(source.file);
  return Promise.all(
    settings.map(async (member, position): Promise<Member> => {
      const resolved: Member = { ...member, address: member.email.toLowerCase() };
      if (member.key !== undefined) {
        await resolveKeyFile(source, position, path.resolve(base, member.key), member.key, resolved, errors);
      } else if (member.fingerprint !== undefined) {
        resolveFingerprint(source, position, member.fingerprint.toUpperCase(), keyIndex, configRoot, resolved, errors);
      }
      return resolved;
    }),
  );
}

async function resolveKeyFile(source: SourceFile, position: number, file: string, named: string, member: Member, errors: ConfigError[]): Promise<void> {
  const at = ['members', position, 'key'];
  let armored: string;
  try {
    armored = await readFile(file, 'utf8');
  } catch (failure) {
    const code = (failure as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? `key file ${named} not found (resolved to ${file})` : `cannot read key file ${named} (${code ?? 'error'})`;
    errors.push(source.error(at, reason));
    return;
  }
  if (armored.includes(secretBlock)) {
    errors.push(source.error(at, `key file ${named} holds a SECRET key; give the member's public key only (gpg --export --armor)`));
    return;
  }
  if (!armored.includes(publicBlock)) {
    errors.push(source.error(at, `key file ${named} is not an ASCII-armored OpenPGP public key (expected a "${publicBlock}" line)`));
    return;
  }
  const blocks = armored.split(publicBlock).length - 1;
  if (blocks > 1) {
    errors.push(source.error(at, `key file ${named} holds ${blocks} key blocks; a member's key file must hold exactly that member's key`));
    return;
  }
  if (fingerprintFunction()) {
    let fingerprints: string[];
    try {
      fingerprints = await fingerprintsOf(armored);
    } catch (failure) {
      errors.push(source.error(at, `key file ${named} is not a readable OpenPGP public key (${shortMessage(failure)})`));
      return;
    }
    if (fingerprints.length === 0) {
      errors.push(source.error(at, `key file ${named} is not a readable OpenPGP public key`));
      return;
    }
    if (fingerprints.length !== 1) {
      errors.push(source.error(at, `key file ${named} holds ${fingerprints.length} keys; a member's key file must hold exactly that member's key`));
      return;
    }
    member.fingerprint = fingerprints[0];
  }
  member.armoredKey = armored;
  member.keySource = file;
}

function resolveFingerprint(
  source: SourceFile,
  position: number,
  fingerprint: string,
  keyIndex: KeyIndex,
  configRoot: string,
  member: Member,
  errors: ConfigError[],
): void {
  const at = ['members', position, 'fingerprint'];
  member.fingerprint = fingerprint;
  if (!keyIndex.canReadFingerprints) {
    errors.push(source.error(at, 'cannot look up fingerprints: the crypto module is not available in this build (use key: FILE instead)'));
    return;
  }
  const found = keyIndex.byFingerprint.get(fingerprint);
  if (!found) {
    errors.push(source.error(at, `no key with fingerprint ${fingerprint} in ${path.join(configRoot, 'keys')}/*.asc (import it there, or use key: FILE)`));
    return;
  }
  if (found.keyCount !== 1) {
    errors.push(source.error(at, `${path.basename(found.file)} holds ${found.keyCount} keys; put this member's key in a file of its own`));
    return;
  }
  member.armoredKey = found.armored;
  member.keySource = found.file;
}

function lineOf(text: string, needle: string): number {
  const offset = text.indexOf(needle);
  return offset < 0 ? 1 : text.slice(0, offset).split('\n').length;
}

function shortMessage(failure: unknown): string {
  const message = errorMessage(failure);
  return message.split('\n')[0]!.slice(0, 200);
}
