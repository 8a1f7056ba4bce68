// The OpenPGP policy in one place: the openpgp.js configs, the limits on hostile input, the key strengths and algorithms, and the compatibility choices.
import * as openpgp from 'openpgp';
import type { Limits } from './index.ts';

/**
 * What Embargo writes: v4 keys and SEIPDv1 (no AEAD), so that GnuPG 2.2, which many members still run, reads every
 * key and message. openpgp.js's own defaults are kept for everything else (minRSABits 2047, its cipher and hash
 * preferences, its rejected curves and algorithms), so no setting here weakens them.
 */
export const compatibleConfig: openpgp.PartialConfig = { v6Keys: false, aeadProtect: false };

/** Re-signed self-signatures use SHA-512: Sequoia (sq) rejects SHA-1 self-signatures, the reason to re-sign at all. */
export const refreshSignaturesConfig: openpgp.PartialConfig = { ...compatibleConfig, preferredHashAlgorithm: openpgp.enums.hash.sha512 };

/** A self-signature made with this hash is weak: members on Sequoia cannot use the key. */
export const WEAK_SELF_SIGNATURE_HASH = openpgp.enums.hash.sha1;

export const DEFAULT_LIMITS: Limits = {
  maxDecompressedBytes: 64 * 1024 * 1024,
  maxMimeDepth: 20,
  maxMimeParts: 500,
  maxArmorBytes: 40 * 1024 * 1024,
};

/**
 * The config for reading untrusted messages. The size limit must be given to readMessage as well as to
 * decrypt/verify: a compressed packet outside any encryption (gpg --sign) is inflated while reading, and
 * openpgp.js's default limit is Infinity.
 */
export function readingConfig(limits: Limits): openpgp.PartialConfig {
  return { maxDecompressedMessageSize: limits.maxDecompressedBytes };
}

/**
 * More decompressed bytes than this many times the compressed ones is a bomb. Text, patches and logs compress 3–20:1
 * and deflate cannot exceed about 1,030:1, which is where bombs of zeros sit (gpg -z 6 on 200 MB of zeros: about 800:1).
 */
export const MAX_COMPRESSION_RATIO = 200;

/** The ratio is judged once this much has been decompressed; anything smaller is cheap whatever its ratio. */
export const RATIO_PROBE_BYTES = 1024 * 1024;

/**
 * Senders' clocks run a little ahead at times: a signature up to this far in the future still verifies (openpgp.js
 * would refuse anything after "now"). The lists refuse what is further ahead, and old signatures, with a clear reason.
 */
export const SIGNATURE_CLOCK_SKEW_MS = 5 * 60_000;

/**
 * RSA member keys below this are weak and block encryption: openpgp.js refuses RSA under 2047 bits
 * (config.minRSABits) anyway, so such a member could receive nothing.
 */
export const MIN_RSA_BITS = 2048;

/** A key expiring within this many days is reported as "expires soon" unless the caller asks for another horizon. */
export const EXPIRES_SOON_DAYS = 14;

/**
 * How long a member's encryption subkey, once verified, is used without verifying its signatures again; a revocation
 * published in config is picked up at once anyway, via a new armored text.
 */
export const KEY_VALIDATION_TTL_MS = 10 * 60 * 1000;

/** The key kinds Embargo generates; list keys are Curve25519 unless an admin asks for RSA-4096. */
export type GeneratedKeyKind = 'curve25519' | 'rsa3072' | 'rsa4096';

/** openpgp.generateKey options for a kind: Curve25519 in its v4 ("legacy") encoding, which GnuPG 2.2 reads. */
export function keyGeneration(kind: GeneratedKeyKind): { type: 'ecc'; curve: 'curve25519Legacy' } | { type: 'rsa'; rsaBits: number } {
  if (kind === 'rsa3072') return { type: 'rsa', rsaBits: 3072 };
  if (kind === 'rsa4096') return { type: 'rsa', rsaBits: 4096 };
  return { type: 'ecc', curve: 'curve25519Legacy' };
}
