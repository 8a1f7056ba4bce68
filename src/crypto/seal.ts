// Outgoing OpenPGP: per-recipient PGP/MIME fan-out (payload encrypted and armored once, one PKESK per copy), list-signed MIME, archive encryption.
import { randomBytes } from 'node:crypto';
import * as openpgp from 'openpgp';
import type { ListKey, SealInput, SealedCopy, SealedFanout } from './index.ts';
import {
  COPY_FRAMED_BODY,
  SEIPD_TAG_OCTET,
  armorMessage,
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
import { replacedListKeys, unlockedListKey } from './list-keys.ts';
import { compatibleConfig } from './policy.ts';
import { wrapSessionKey } from './ecdh-wrap.ts';
import { encryptionPacketOf, openpgpKeyOf } from './member-keys.ts';

/** The outer Subject of every encrypted copy; the real one is inside the ciphertext. */
export const GENERIC_SUBJECT = 'Encrypted message';

/** Below this SEIPD size sharing saves nothing worth the framing; each copy is armored whole. */
const SHARE_THRESHOLD = 1024;

const ENCRYPTED_PREAMBLE = 'This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)';
const SIGNED_PREAMBLE = 'This is an OpenPGP/MIME signed message (RFC 4880 and 3156)';

function newBoundary(prefix: string): string {
  return `${prefix}-${randomBytes(18).toString('base64url')}`;
}

/** A boundary that cannot occur in `content` (checked, although 144 random bits make a clash implausible). */
function boundaryFor(prefix: string, content: Buffer): string {
  for (;;) {
    const boundary = newBoundary(prefix);
    if (!content.includes(`--${boundary}`)) return boundary;
  }
}

const ASCII = /^[\x20-\x7e\t]*$/;
const ADDRESS_HEADERS = new Set(['from', 'to', 'cc', 'reply-to', 'sender']);

/** RFC 2047 encoded words of at most 36 UTF-8 octets (60 characters) each (whole characters), folded onto continuation lines. */
function encodeWords(text: string): string {
  const words: string[] = [];
  let current = '';
  for (const character of text) {
    if (Buffer.byteLength(current + character, 'utf8') > 36) {
      words.push(current);
      current = '';
    }
    current += character;
  }
  if (current) words.push(current);
  return words.map((word) => `=?UTF-8?B?${Buffer.from(word, 'utf8').toString('base64')}?=`).join('\r\n ');
}

/**
 * Header values are emitted as given when they are plain ASCII (callers pass raw, already encoded values);
 * otherwise display names (in address headers) or the whole value become RFC 2047 encoded words.
 */
function headerLine(name: string, value: string): string {
  const clean = value.replace(/\r?\n[ \t]*/g, ' ');
  if (ASCII.test(clean)) return `${name}: ${clean}\r\n`;
  if (ADDRESS_HEADERS.has(name.toLowerCase())) {
    const encoded = clean.replace(/(^|,\s*)([^,<]*?)\s*<([^<>]+)>/g, (_match, separator: string, display: string, address: string) => {
      const unquoted = display.trim().replace(/^"(.*)"$/, '$1');
      return `${separator}${ASCII.test(unquoted) ? display.trim() : encodeWords(unquoted)} <${address}>`;
    });
    if (ASCII.test(encoded.replace(/\r\n /g, ' '))) return `${name}: ${encoded}\r\n`;
  }
  return `${name}: ${encodeWords(clean)}\r\n`;
}

function isContentOrSubject(name: string): boolean {
  const key = name.toLowerCase();
  return key === 'subject' || key === 'mime-version' || key.startsWith('content-');
}

function crlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

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
    input.protectedHeaders
      .filter(([name]) => !isContentOrSubject(name) || name.toLowerCase() === 'subject')
      .map(([name, value]) => headerLine(name, value))
      .join('') +
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
    input.outerHeaders
      .filter(([name]) => !isContentOrSubject(name))
      .map(([name, value]) => headerLine(name, value))
      .join('') +
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

async function signedLiteral(inner: Buffer): Promise<openpgp.Message<Uint8Array>> {
  return openpgp.createMessage({ binary: new Uint8Array(inner.buffer, inner.byteOffset, inner.byteLength), format: 'binary' });
}

/** From this size on, openpgp.js gets its input as a stream (below it, streams only cost time). */
const STREAM_THRESHOLD = 1024 * 1024;
const STREAM_CHUNK = 1024 * 1024;

/**
 * A literal message openpgp.js reads in 1 MiB views when `data` is big. Given one whole array, openpgp.js copies the
 * whole message five or six times on the way (literal packet, packet list, MDC input, ciphertext, packet framing):
 * about 105 MB for a 17 MiB post; streamed, it works chunk by chunk (partial body lengths, as gpg writes from a pipe).
 */
async function literalMessage(parts: Buffer[]): Promise<openpgp.Message<Uint8Array>> {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  if (total < STREAM_THRESHOLD) return signedLiteral(parts.length === 1 ? parts[0] : Buffer.concat(parts, total));
  let index = 0;
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      while (index < parts.length && offset >= parts[index].length) {
        index += 1;
        offset = 0;
      }
      if (index >= parts.length) {
        controller.close();
        return;
      }
      const part = parts[index];
      const end = Math.min(offset + STREAM_CHUNK, part.length);
      controller.enqueue(new Uint8Array(part.buffer, part.byteOffset + offset, end - offset));
      offset = end;
    },
  });
  return (await openpgp.createMessage({ binary: stream, format: 'binary' })) as unknown as openpgp.Message<Uint8Array>;
}

/** openpgp.js output as one Buffer: a view of an array, or the chunks of a stream joined once. */
async function collected(output: Uint8Array | ReadableStream<Uint8Array>): Promise<Buffer> {
  if (output instanceof Uint8Array) return Buffer.from(output.buffer, output.byteOffset, output.byteLength);
  const reader = output.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  return Buffer.concat(chunks, total);
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

let useNativeCurve25519 = true;

/** Switches the node:crypto Curve25519 wrap off (tests compare it with openpgp.js's own; the bench reports both). */
export function setNativeCurve25519(enabled: boolean): void {
  useNativeCurve25519 = enabled;
}

/** One v3 PKESK packet (with header) wrapping `sessionKey` for the member's encryption subkey. */
async function sessionKeyPacket(recipient: SealInput['recipients'][number], sessionKey: openpgp.SessionKey): Promise<Uint8Array> {
  const { keyPacket, curve25519 } = await encryptionPacketOf(recipient.key);
  const symmetric = SYMMETRIC_IDS[sessionKey.algorithm];
  if (symmetric === undefined) throw new Error(`unexpected session key algorithm ${sessionKey.algorithm}`);
  if (curve25519 && useNativeCurve25519) return wrapSessionKey(curve25519, symmetric, sessionKey.data);
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

/**
 * Encrypts once, wraps the session key per recipient. The signed SEIPD body is framed by each copy for its first
 * 516 octets (2-4 partial-length octets, chosen so PKESK + framing is a multiple of 3 octets) and by a shared
 * framing after that; so the shared part's base64 lines are computed once and every copy is head + payload + tail.
 */
export async function sealFanout(input: SealInput): Promise<SealedFanout> {
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
      const message = Buffer.concat([await sessionKeyPacket(recipient, sessionKey), encrypted]);
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
    const pkesk = await sessionKeyPacket(recipient, sessionKey);
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
export async function sealFanoutNaive(input: SealInput): Promise<SealedFanout> {
  const list = unlockedListKey(input.listKey);
  const inner = buildInnerEntity(input);
  const boundary = newBoundary('embargo');
  const head = outerHead(input, boundary);
  const copies: SealedCopy[] = [];
  for (const recipient of input.recipients) {
    const armored = await openpgp.encrypt({
      message: await signedLiteral(inner),
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

const MICALG: Partial<Record<number, string>> = {
  [openpgp.enums.hash.sha256]: 'pgp-sha256',
  [openpgp.enums.hash.sha384]: 'pgp-sha384',
  [openpgp.enums.hash.sha512]: 'pgp-sha512',
  [openpgp.enums.hash.sha224]: 'pgp-sha224',
  [openpgp.enums.hash.sha1]: 'pgp-sha1',
};

/**
 * RFC 3156 multipart/signed by the list key. `content` is a MIME entity (its own Content-* headers, blank line,
 * body) and should be 7-bit safe (quoted-printable or base64 for anything else), as RFC 3156 5 asks.
 */
export async function signMime(options: { listKey: ListKey; content: Buffer; headers: Array<[string, string]> }): Promise<Buffer> {
  const list = unlockedListKey(options.listKey);
  const content = Buffer.from(crlf(options.content.toString('latin1')), 'latin1');
  const signatureArmored = await openpgp.sign({
    message: await signedLiteral(content),
    signingKeys: list.privateKey,
    detached: true,
    format: 'armored',
    config: compatibleConfig,
  });
  const signature = await openpgp.readSignature({ armoredSignature: signatureArmored });
  // micalg must name the hash the signature really used (RFC 3156 5), so it is read back, not assumed.
  const hashAlgorithm = signature.packets[0]?.hashAlgorithm;
  const micalg = (hashAlgorithm !== null && hashAlgorithm !== undefined ? MICALG[hashAlgorithm] : undefined) ?? 'pgp-sha512';
  const boundary = boundaryFor('embargo-signed', content);
  const head =
    options.headers
      .filter(([name]) => !isContentOrSubject(name) || name.toLowerCase() === 'subject')
      .map(([name, value]) => headerLine(name, value))
      .join('') +
    'MIME-Version: 1.0\r\n' +
    `Content-Type: multipart/signed; micalg=${micalg};\r\n protocol="application/pgp-signature";\r\n boundary="${boundary}"\r\n` +
    '\r\n' +
    `${SIGNED_PREAMBLE}\r\n` +
    `--${boundary}\r\n`;
  const signaturePart =
    `\r\n--${boundary}\r\n` +
    'Content-Type: application/pgp-signature; name="signature.asc"\r\n' +
    'Content-Description: OpenPGP digital signature\r\n' +
    'Content-Disposition: attachment; filename="signature.asc"\r\n' +
    '\r\n' +
    crlf(signatureArmored) +
    `\r\n--${boundary}--\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), content, Buffer.from(signaturePart, 'latin1')]);
}

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

export { armorMessage };
