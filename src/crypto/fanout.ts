// Outgoing posts to members: a per-recipient PGP/MIME fan-out, the payload encrypted and armored once and one session-key packet (PKESK) per copy.
import * as openpgp from 'openpgp';
import type { SealInput, SealOptions, SealedCopy, SealedFanout } from './index.ts';
import {
  COPY_FRAMED_BODY,
  SEIPD_TAG_OCTET,
  base64Lines,
  base64LinesOf,
  checksumLine,
  combineCrc24,
  copyFraming,
  crc24,
  crc24ZeroOperator,
  readPacket,
  sharedFramingPieces,
} from './armor.ts';
import { wrapSessionKey } from './ecdh-wrap.ts';
import { unlockedListKey } from './list-keys.ts';
import { collected, literalMessage, literalOf } from './literal.ts';
import { encryptionPacketOf, openpgpKeyOf } from './member-keys.ts';
import { boundaryFor, crlf, headerLine, headerLines, newBoundary } from './mime-writing.ts';
import { compatibleConfig } from './policy.ts';

/** The outer Subject of every encrypted copy; the real one is inside the ciphertext. */
export const GENERIC_SUBJECT = 'Encrypted message';

/** Below this SEIPD size sharing saves nothing worth the framing; each copy is armored whole. */
const SHARE_THRESHOLD = 1024;

const ENCRYPTED_PREAMBLE = 'This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)';

/**
 * The plaintext inside every copy: protected headers on a multipart/mixed (draft-autocrypt-lamps-protected-headers),
 * the verification note, then the poster's entity unchanged.
 */
export function buildInnerEntity(input: Pick<SealInput, 'protectedHeaders' | 'note' | 'content'>): Buffer {
  return Buffer.concat(innerEntityParts(input));
}

/** The inner entity as [head, content, tail]: the fan-out streams these into the encryption without joining them. */
function innerEntityParts(input: Pick<SealInput, 'protectedHeaders' | 'note' | 'content'>): Buffer[] {
  const boundary = boundaryFor('embargo-inner', input.content);
  const note = crlf(input.note.endsWith('\n') ? input.note : `${input.note}\n`);
  const noteIsAscii = /^[\x00-\x7f]*$/.test(note);
  const head =
    `Content-Type: multipart/mixed; protected-headers="v1";\r\n boundary="${boundary}"\r\n` +
    headerLines(input.protectedHeaders, true) +
    `\r\n--${boundary}\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\n` +
    `Content-Transfer-Encoding: ${noteIsAscii ? '7bit' : '8bit'}\r\n` +
    `Content-Description: Verification note from the list\r\n\r\n` +
    note +
    `\r\n--${boundary}\r\n`;
  return [Buffer.from(head, 'utf8'), input.content, Buffer.from(`\r\n--${boundary}--\r\n`)];
}

function outerHead(input: SealInput, boundary: string): string {
  return (
    headerLines(input.outerHeaders, false) +
    headerLine('Subject', GENERIC_SUBJECT) +
    'MIME-Version: 1.0\r\n' +
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n boundary="${boundary}"\r\n` +
    '\r\n' +
    `${ENCRYPTED_PREAMBLE}\r\n` +
    `--${boundary}\r\n` +
    'Content-Type: application/pgp-encrypted\r\n' +
    'Content-Description: PGP/MIME version identification\r\n' +
    '\r\n' +
    'Version: 1\r\n' +
    '\r\n' +
    `--${boundary}\r\n` +
    'Content-Type: application/octet-stream; name="encrypted.asc"\r\n' +
    'Content-Description: OpenPGP encrypted message\r\n' +
    'Content-Disposition: inline; filename="encrypted.asc"\r\n' +
    '\r\n'
  );
}

function outerTail(boundary: string): string {
  return `\r\n--${boundary}--\r\n`;
}

/**
 * openpgp.js's own way to build a PKESK (what Message.encryptSessionKey calls); the published typings leave the
 * static factory and encrypt() out, though openpgp.PublicKeyEncryptedSessionKeyPacket itself is exported.
 */
interface SessionKeyPacketFactory {
  fromObject(options: {
    version: 3;
    encryptionKeyPacket: openpgp.PublicKeyPacket | openpgp.PublicSubkeyPacket;
    anonymousRecipient: boolean;
    sessionKey: Uint8Array;
    sessionKeyAlgorithm: openpgp.enums.symmetric;
  }): { encrypt(key: openpgp.PublicKeyPacket | openpgp.PublicSubkeyPacket): Promise<void> };
}

const SYMMETRIC_IDS: Record<string, openpgp.enums.symmetric> = {
  aes128: openpgp.enums.symmetric.aes128,
  aes192: openpgp.enums.symmetric.aes192,
  aes256: openpgp.enums.symmetric.aes256,
};

/** One v3 PKESK packet (with header) wrapping `sessionKey` for the member's encryption subkey. */
async function sessionKeyPacket(
  recipient: SealInput['recipients'][number],
  sessionKey: openpgp.SessionKey,
  curve25519Wrap: NonNullable<SealOptions['curve25519Wrap']>,
): Promise<Uint8Array> {
  const { keyPacket, curve25519 } = await encryptionPacketOf(recipient.key);
  const symmetric = SYMMETRIC_IDS[sessionKey.algorithm];
  if (symmetric === undefined) throw new Error(`unexpected session key algorithm ${sessionKey.algorithm}`);
  if (curve25519 && curve25519Wrap === 'node') return wrapSessionKey(curve25519, symmetric, sessionKey.data);
  const factory = openpgp.PublicKeyEncryptedSessionKeyPacket as unknown as SessionKeyPacketFactory;
  const packet = factory.fromObject({
    version: 3,
    encryptionKeyPacket: keyPacket,
    anonymousRecipient: false,
    sessionKey: sessionKey.data,
    sessionKeyAlgorithm: symmetric,
  });
  await packet.encrypt(keyPacket);
  const list = new openpgp.PacketList<openpgp.PublicKeyEncryptedSessionKeyPacket>();
  list.push(packet as unknown as openpgp.PublicKeyEncryptedSessionKeyPacket);
  return list.write();
}

/** One copy per recipient, sealed as `options.strategy` says (by default the shared payload). */
export async function sealFanout(input: SealInput, options: SealOptions = {}): Promise<SealedFanout> {
  if (options.strategy === 'per-recipient') return sealEachCopy(input);
  return sealSharedPayload(input, options.curve25519Wrap ?? 'node');
}

/**
 * Encrypts once, wraps the session key per recipient. The signed SEIPD body is framed by each copy for its first
 * 516 octets (2-4 partial-length octets, chosen so PKESK + framing is a multiple of 3 octets) and by a shared
 * framing after that; so the shared part's base64 lines are computed once and every copy is head + payload + tail.
 */
async function sealSharedPayload(input: SealInput, curve25519Wrap: NonNullable<SealOptions['curve25519Wrap']>): Promise<SealedFanout> {
  const list = unlockedListKey(input.listKey);
  const inner = innerEntityParts(input);
  const generated = await openpgp.generateSessionKey({ encryptionKeys: list.publicKey, config: compatibleConfig });
  // SEIPDv1 for every copy (GnuPG 2.2 cannot read v2); a fresh session key for every message.
  const sessionKey: openpgp.SessionKey = { data: generated.data, algorithm: generated.algorithm };
  const encrypted = await collected(
    (await openpgp.encrypt({
      message: await literalMessage(inner),
      sessionKey,
      signingKeys: list.privateKey,
      format: 'binary',
      config: compatibleConfig,
    })) as Uint8Array | ReadableStream<Uint8Array>,
  );
  // In place: a streamed SEIPD comes in partial chunks, which would otherwise be joined into a second copy.
  const seipd = readPacket(encrypted, 0, { compactInPlace: true });
  if (seipd.tag !== 18 || seipd.end !== encrypted.length) throw new Error('openpgp.encrypt returned more than one SEIPD packet');
  const body = seipd.body;
  const boundary = newBoundary('embargo');
  const head = Buffer.from(outerHead(input, boundary), 'latin1');
  const armorEnd = `-----END PGP MESSAGE-----\r\n${outerTail(boundary)}`;
  const tailWith = (crc: number): Buffer => Buffer.from(checksumLine(crc) + armorEnd, 'latin1');
  const armorStart = Buffer.from('-----BEGIN PGP MESSAGE-----\r\n\r\n');

  if (body.length < SHARE_THRESHOLD) {
    const copies: SealedCopy[] = [];
    for (const recipient of input.recipients) {
      const message = Buffer.concat([await sessionKeyPacket(recipient, sessionKey, curve25519Wrap), encrypted]);
      copies.push({ address: recipient.address, head: Buffer.concat([head, armorStart, base64Lines(message)]), tail: tailWith(crc24(message)) });
    }
    return { payload: Buffer.alloc(0), copies };
  }

  const shared = sharedFramingPieces(body.subarray(COPY_FRAMED_BODY));
  const payload = base64LinesOf(shared);
  const sharedCrc = shared.reduce((crc, piece) => crc24(piece, crc), 0);
  const sharedZeros = crc24ZeroOperator(shared.reduce((sum, piece) => sum + piece.length, 0));
  const framings = new Map<2 | 3 | 4, Buffer>();
  const framingOf = (octets: 2 | 3 | 4): Buffer => {
    let framing = framings.get(octets);
    if (!framing) {
      framing = Buffer.concat([Buffer.from([SEIPD_TAG_OCTET]), copyFraming(body, octets)]);
      framings.set(octets, framing);
    }
    return framing;
  };
  const copies: SealedCopy[] = [];
  for (const recipient of input.recipients) {
    const pkesk = await sessionKeyPacket(recipient, sessionKey, curve25519Wrap);
    // 1 tag octet + 516 body octets + n length octets: pick n so the whole prefix is a multiple of 3.
    const base = pkesk.length + 1 + COPY_FRAMED_BODY;
    const octets = ([2, 3, 4] as const).find((candidate) => (base + candidate) % 3 === 0) ?? 2;
    const prefix = Buffer.concat([pkesk, framingOf(octets)]);
    const crc = combineCrc24(crc24(prefix), sharedCrc, sharedZeros);
    copies.push({ address: recipient.address, head: Buffer.concat([head, armorStart, base64Lines(prefix)]), tail: tailWith(crc) });
  }
  return { payload, copies };
}

/** The plain path (a full sign+encrypt and armor per recipient), kept for the benchmark's comparison. */
async function sealEachCopy(input: SealInput): Promise<SealedFanout> {
  const list = unlockedListKey(input.listKey);
  const inner = buildInnerEntity(input);
  const boundary = newBoundary('embargo');
  const head = outerHead(input, boundary);
  const copies: SealedCopy[] = [];
  for (const recipient of input.recipients) {
    const armored = await openpgp.encrypt({
      message: await literalOf(inner),
      encryptionKeys: await openpgpKeyOf(recipient.key),
      signingKeys: list.privateKey,
      format: 'armored',
      config: compatibleConfig,
    });
    copies.push({ address: recipient.address, head: Buffer.from(head + crlf(armored), 'latin1'), tail: Buffer.from(outerTail(boundary), 'latin1') });
  }
  return { payload: Buffer.alloc(0), copies };
}

/** The full message of one copy. */
export function assembleCopy(fanout: SealedFanout, copy: SealedCopy): Buffer {
  return Buffer.concat([copy.head, fanout.payload, copy.tail]);
}
