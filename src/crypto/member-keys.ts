// Member public keys: parsed once and cached, described as MemberKey, and checked for the problems that make them unusable or weak.
import * as openpgp from 'openpgp';
import { curve25519Recipient, type Curve25519Recipient } from './ecdh-wrap.ts';
import type { KeyProblem, MemberKey } from './index.ts';
import { EXPIRES_SOON_DAYS, KEY_VALIDATION_TTL_MS, MIN_RSA_BITS, WEAK_SELF_SIGNATURE_HASH } from './policy.ts';

interface ParsedMemberKey {
  memberKey: MemberKey;
  key: openpgp.PublicKey;
  /** Encryption subkey packet, found (and its signatures verified) once; revalidated after `validatedUntil`. */
  encryption?: EncryptionTarget & { validatedUntil: number };
}

const byArmored = new Map<string, ParsedMemberKey>();
const byFingerprint = new Map<string, ParsedMemberKey>();

export class KeyReadError extends Error {}

function describeAlgorithm(info: openpgp.AlgorithmInfo): string {
  if (info.algorithm.startsWith('rsa')) return `rsa${info.bits ?? ''}`;
  if (info.curve === 'ed25519Legacy' || info.curve === 'curve25519Legacy' || info.algorithm === 'ed25519' || info.algorithm === 'x25519') return 'curve25519';
  if (info.algorithm === 'ed448' || info.algorithm === 'x448') return 'curve448';
  return info.curve ?? info.algorithm;
}

async function expirationOf(key: openpgp.PublicKey): Promise<Date | null> {
  try {
    const expiration = await key.getExpirationTime();
    return expiration instanceof Date ? expiration : null;
  } catch {
    return null;
  }
}

async function parse(armored: string): Promise<ParsedMemberKey> {
  const cached = byArmored.get(armored);
  if (cached) return cached;
  let key: openpgp.PublicKey;
  try {
    key = await openpgp.readKey({ armoredKey: armored });
  } catch (error) {
    throw new KeyReadError(`not a readable OpenPGP public key: ${(error as Error).message}`);
  }
  if (key.isPrivate()) key = key.toPublic();
  const memberKey: MemberKey = {
    fingerprint: key.getFingerprint().toUpperCase(),
    userIds: key.getUserIDs(),
    expiresAt: await expirationOf(key),
    algorithm: describeAlgorithm(key.getAlgorithmInfo()),
    armored,
  };
  const parsed: ParsedMemberKey = { memberKey, key };
  byArmored.set(armored, parsed);
  byFingerprint.set(memberKey.fingerprint, parsed);
  return parsed;
}

/** Parses an armored public key (cached by its text). Rejects with KeyReadError when the text is not a key. */
export async function parseMemberKey(armored: string): Promise<MemberKey> {
  return (await parse(armored)).memberKey;
}

/** The openpgp.js key behind a MemberKey, parsed at most once. */
export async function openpgpKeyOf(memberKey: MemberKey): Promise<openpgp.PublicKey> {
  const cached = byFingerprint.get(memberKey.fingerprint);
  if (cached) return cached.key;
  return (await parse(memberKey.armored)).key;
}

export interface EncryptionTarget {
  keyPacket: openpgp.PublicKeyPacket | openpgp.PublicSubkeyPacket;
  keyId: openpgp.KeyID;
  /** Set for v4 Curve25519 ECDH subkeys: the fast node:crypto wrap applies. */
  curve25519?: Curve25519Recipient;
}

/** The packet fields ecdh-wrap reads; publicParams is public at runtime but not in openpgp.js's typings. */
interface KeyPacketInternals {
  algorithm: number;
  version: number;
  publicParams: unknown;
  getFingerprintBytes(): Uint8Array;
}

/** The fingerprint of the (sub)key a copy to this member is encrypted to: what the copy's PKESK names by key id. */
export async function encryptionKeyFingerprint(memberKey: MemberKey, now = new Date()): Promise<string> {
  const { keyPacket } = await encryptionPacketOf(memberKey, now);
  return keyPacket.getFingerprint().toUpperCase();
}

/**
 * The packet to wrap a session key for, verified at most every few minutes: openpgp.encryptSessionKey re-verifies
 * every self-signature on each call, which would dominate the cost of a large fan-out.
 */
export async function encryptionPacketOf(
  memberKey: MemberKey,
  now = new Date(),
): Promise<EncryptionTarget> {
  const parsed = byFingerprint.get(memberKey.fingerprint) ?? (await parse(memberKey.armored));
  if (parsed.encryption && parsed.encryption.validatedUntil > now.getTime()) return parsed.encryption;
  const encryptionKey = await parsed.key.getEncryptionKey(undefined, now);
  const expiresAt = parsed.memberKey.expiresAt?.getTime() ?? Infinity;
  const keyPacket = encryptionKey.keyPacket as openpgp.PublicKeyPacket | openpgp.PublicSubkeyPacket;
  const internals = keyPacket as unknown as KeyPacketInternals;
  const keyId = encryptionKey.getKeyID();
  parsed.encryption = {
    keyPacket,
    keyId,
    curve25519: curve25519Recipient({
      algorithm: internals.algorithm,
      version: internals.version,
      publicParams: internals.publicParams,
      keyId: Buffer.from(keyId.toHex(), 'hex'),
      fingerprint: internals.getFingerprintBytes(),
    }),
    validatedUntil: Math.min(now.getTime() + KEY_VALIDATION_TTL_MS, expiresAt),
  };
  return parsed.encryption;
}

/** Fingerprints of every key in a text that may hold several armored blocks (openpgp.js reads only the first block). */
export async function fingerprintsInArmored(armored: string): Promise<string[]> {
  const blocks = armored.match(/-----BEGIN PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----/g) ?? [];
  const fingerprints: string[] = [];
  for (const block of blocks) {
    try {
      const keys = await openpgp.readKeys({ armoredKeys: block });
      for (const key of keys) fingerprints.push(key.getFingerprint().toUpperCase());
    } catch {
      // An unreadable block contributes nothing; checkMemberKey reports unreadable keys.
    }
  }
  return fingerprints;
}

function emailsOf(userIds: string[]): string[] {
  return userIds.map((userId) => (/<([^<>]+)>\s*$/.exec(userId)?.[1] ?? userId).trim().toLowerCase());
}

/** Every problem with a member's key; the blocking ones mean the member cannot be sent encrypted mail. */
export async function checkMemberKey(
  memberKey: MemberKey,
  address: string,
  now: Date = new Date(),
  options: { expiresSoonDays?: number } = {},
): Promise<KeyProblem[]> {
  const soonMs = (options.expiresSoonDays ?? EXPIRES_SOON_DAYS) * 24 * 60 * 60 * 1000;
  let parsed: ParsedMemberKey;
  try {
    parsed = byFingerprint.get(memberKey.fingerprint) ?? (await parse(memberKey.armored));
  } catch (error) {
    return [{ code: 'unreadable', blocking: true, detail: (error as Error).message }];
  }
  const { key } = parsed;
  const fingerprint = memberKey.fingerprint;
  const problems: KeyProblem[] = [];

  const revoked = await key.isRevoked(undefined, undefined, now).catch(() => false);
  if (revoked) problems.push({ code: 'revoked', blocking: true, detail: `key ${fingerprint} is revoked` });

  const expiresAt = memberKey.expiresAt;
  if (!revoked && expiresAt && expiresAt.getTime() <= now.getTime()) {
    problems.push({ code: 'expired', blocking: true, detail: `key ${fingerprint} expired on ${expiresAt.toISOString()}` });
  } else if (!revoked && expiresAt && expiresAt.getTime() - now.getTime() < soonMs) {
    problems.push({ code: 'expires-soon', blocking: false, detail: `key ${fingerprint} expires on ${expiresAt.toISOString()}` });
  }

  if (!revoked && !problems.some((problem) => problem.code === 'expired')) {
    try {
      await key.getEncryptionKey(undefined, now);
    } catch (error) {
      problems.push({
        code: 'no-encryption-subkey',
        blocking: true,
        detail: `key ${fingerprint} has no usable encryption subkey (${(error as Error).message})`,
      });
    }
  }

  for (const part of [key, ...key.subkeys]) {
    const info = part.getAlgorithmInfo();
    if (info.algorithm.startsWith('rsa') && (info.bits ?? 0) < MIN_RSA_BITS) {
      problems.push({ code: 'weak-rsa', blocking: true, detail: `key ${fingerprint} uses RSA with ${info.bits} bits (${MIN_RSA_BITS} is the minimum)` });
      break;
    }
  }

  const selfSignatures = [
    ...key.users.flatMap((user) => user.selfCertifications),
    ...key.subkeys.flatMap((subkey) => subkey.bindingSignatures),
  ];
  if (selfSignatures.length > 0 && selfSignatures.every((signature) => signature.hashAlgorithm === WEAK_SELF_SIGNATURE_HASH)) {
    problems.push({ code: 'sha1-only', blocking: false, detail: `key ${fingerprint} has only SHA-1 self-signatures; ask the member to refresh it` });
  }

  if (!emailsOf(memberKey.userIds).includes(address.trim().toLowerCase())) {
    problems.push({
      code: 'user-id-mismatch',
      blocking: false,
      detail: `no user ID of key ${fingerprint} is ${address} (it has ${emailsOf(memberKey.userIds).join(', ') || 'none'})`,
    });
  }
  return problems;
}
