// The OpenPGP boundary of Embargo: the only module that imports openpgp; everything else uses these functions and types.
// The types are declared here; the implementations live in the other files of src/crypto/ and are re-exported at the end.

/** A problem that makes a member key unusable or weak. `usable` keys have none of the blocking ones. */
export interface KeyProblem {
  code:
    | 'unreadable'
    | 'expired'
    | 'revoked'
    | 'no-encryption-subkey'
    | 'weak-rsa'
    | 'sha1-only'
    | 'user-id-mismatch'
    | 'expires-soon';
  /** Blocks encryption to this key (expired, revoked, no subkey, unreadable). */
  blocking: boolean;
  detail: string;
}

/** A member's public key, parsed once and cached by fingerprint. */
export interface MemberKey {
  fingerprint: string; // 40 upper-case hex digits
  userIds: string[];
  /** null: never expires. */
  expiresAt: Date | null;
  algorithm: string; // e.g. 'curve25519', 'rsa3072'
  armored: string;
}

/** A list's key pair, loaded and unlocked. The private part never leaves src/crypto. */
export interface ListKey {
  listName: string;
  fingerprint: string;
  armoredPublicKey: string;
}

/** What we learned about a signature. A signature counts only after openpgp.js verified it. */
export interface Verification {
  signed: boolean;
  valid: boolean;
  signingFingerprint?: string;
  signingKeyId?: string;
  signedAt?: Date;
  /**
   * SHA-256 (hex) of the signature's hashed area and hash prefix, readable whether or not the key is known: with the
   * signed content, the identity of one signature, so the lists accept it once however it is wrapped.
   */
  digest?: string;
  /** The member address whose registered key made the valid signature, if any. */
  memberAddress?: string;
  /** Why the signature does not count, for bounces and logs (never message content). */
  reason?: string;
  /** A valid signature as a detached, armored signature: what lets the public verify a published advisory. */
  detachedSignature?: string;
  /** Its hash algorithm in RFC 3156 micalg form without the prefix, e.g. 'sha256'. */
  hashAlgorithm?: string;
}

export interface OpenedMessage {
  /** Whether the incoming message was encrypted (to the list key). */
  encrypted: boolean;
  /** The inner MIME entity (headers + body) as the poster wrote it, byte for byte where the format allows. */
  entity: Buffer;
  /** Headers found inside the ciphertext (protected headers), e.g. the real Subject. */
  protectedHeaders: Record<string, string>;
  verification: Verification;
  /** 'pgp-mime' | 'inline' | 'exchange-mangled' | 'signed-only' | 'plain' */
  format: string;
  /**
   * What a valid signature covers: 'entity' = all of `entity`; 'part' = only one text part of it (an inline
   * clearsigned block with unsigned text or other parts around it, e.g. an HTML twin or attachments).
   */
  signatureCovers?: 'entity' | 'part';
  /**
   * Parts of the post left out of `entity` because neither the signature nor the encryption covers them (the HTML twin
   * or attachments beside an inline PGP block), described for the readers' note: type and file name, never content.
   */
  droppedParts?: string[];
  /**
   * Attachments beside a clearsigned text part (the XSA shape), each checked against the digests in the signed text.
   * When every one is covered and the text part is wholly clearsigned, `signatureCovers` is 'entity'.
   */
  attachments?: AttachmentCheck[];
  /** The charset the inline text was labelled with (armor Charset: header, else its part's charset). */
  charset?: string;
}

/** One attachment of a checksummed post: whether a digest of its exact bytes appears in the signed text. */
export interface AttachmentCheck {
  /** The file name as sent (only ever shown inside encryption: it can tell what an advisory is about). */
  name: string;
  /** 1-based position among the attachments, to name it where the file name must not be shown. */
  position: number;
  size: number;
  sha256: string;
  covered: 'sha256' | 'sha512' | null;
}

/** A typed failure: bad input, not a bug. */
export interface CryptoFailure {
  code:
    | 'not-for-this-key'
    /** Encrypted to a key this list used before a rotation (still on the server, but no longer its key). */
    | 'replaced-list-key'
    | 'bad-armor'
    | 'decrypt-failed'
    | 'too-large'
    | 'too-deep'
    | 'too-many-parts'
    | 'compression-bomb'
    | 'malformed';
  detail: string;
}

export type OpenResult = { ok: true; message: OpenedMessage } | { ok: false; failure: CryptoFailure };

export interface Limits {
  maxDecompressedBytes: number; // default 64 MiB
  maxMimeDepth: number; // default 20
  maxMimeParts: number; // default 500
  maxArmorBytes: number; // default 40 MiB
}

export interface Recipient {
  address: string;
  key: MemberKey;
}

/** One recipient's copy of a fan-out: the full message is head + payload + tail. */
export interface SealedCopy {
  address: string;
  head: Buffer;
  tail: Buffer;
}

export interface SealedFanout {
  /** Shared by every copy (armored encrypted payload). */
  payload: Buffer;
  copies: SealedCopy[];
}

/** How a fan-out is sealed; the defaults are what the lists use, the rest is for tests and the benchmark. */
export interface SealOptions {
  /**
   * 'shared-payload' (default): encrypt and armor once, one session-key packet per copy. 'per-recipient': a full
   * sign+encrypt and armor per copy, the plain path the benchmark compares with.
   */
  strategy?: 'shared-payload' | 'per-recipient';
  /**
   * Who wraps the session key for a Curve25519 member key in the shared-payload path: 'node' (default, node:crypto)
   * or 'openpgp' (openpgp.js's own code, which the tests compare it with and the benchmark reports).
   */
  curve25519Wrap?: 'node' | 'openpgp';
}

export interface SealInput {
  listKey: ListKey;
  /** The poster's content entity, included unchanged byte for byte. */
  content: Buffer;
  /** Headers protected inside the ciphertext: Subject, From, To, Date, Message-ID, (Reply-To, In-Reply-To, References). */
  protectedHeaders: Array<[string, string]>;
  /** Short plain-text verification note shown to readers before the content (who signed, fingerprint, encrypted or not). */
  note: string;
  /** Outer headers (From, To, Date, Message-ID, List-*, Precedence...); Subject is replaced by a generic text. */
  outerHeaders: Array<[string, string]>;
  recipients: Recipient[];
}

export { ensureListKey, readListKey, importListKey, generateInMemoryKey, forgetInMemoryKey, listKeyFile, generateMemberKey, sha1SelfSignatures, refreshListKeySignatures } from './list-keys.ts';
export { parseMemberKey, fingerprintsInArmored, checkMemberKey, encryptionKeyFingerprint, encryptionPacketOf, KeyReadError } from './member-keys.ts';
export { openMessage } from './open.ts';
export { DEFAULT_LIMITS, SIGNATURE_CLOCK_SKEW_MS } from './policy.ts';
export { selfTestListKey, type SelfTestResult } from './self-test.ts';
export { sealFanout, assembleCopy, buildInnerEntity, GENERIC_SUBJECT } from './fanout.ts';
export { signMime } from './sign-mime.ts';
export { encryptForArchive, decryptFromArchive } from './archive-encryption.ts';
