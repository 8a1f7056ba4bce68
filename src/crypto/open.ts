// Incoming OpenPGP mail in every form real clients send: decrypts with the list key, verifies signatures, and binds them to member keys.
import { createHash } from 'node:crypto';
import * as openpgp from 'openpgp';
import type { AttachmentCheck, CryptoFailure, Limits, ListKey, MemberKey, OpenResult, OpenedMessage, Verification } from './index.ts';
import { checkAttachments, type Attachment } from './attachments.ts';
import { BEGIN_SIGNED, onlyClearsigned, readClearsigned } from './cleartext.ts';
import { installDecompressionLimits } from './decompression.ts';
import { openpgpFailureKind, refusedRatio } from './errors.ts';
import { replacedListKeys, unlockedListKey, type UnlockedListKey } from './list-keys.ts';
import { checkMemberKey, openpgpKeyOf } from './member-keys.ts';
import { canonicalCrlf, contentEntity, fileEntity, isContentHeader, mixedOf } from './mime.ts';
import { decodeBody } from '../mime/decode.ts';
import { fileNameOf, headerValue, parseMime, type MimeEntity, type MimeHeader } from '../mime/read.ts';
import { DEFAULT_LIMITS, SIGNATURE_CLOCK_SKEW_MS, readingConfig } from './policy.ts';
import { errorMessage } from '../util/errors.ts';

installDecompressionLimits();

interface Member {
  address: string;
  key: MemberKey;
}

interface OpenContext {
  /** Signatures are verified as of this time: now plus the allowed clock skew. */
  verifyAt: Date;
  listKey: ListKey;
  list: UnlockedListKey;
  members: Member[];
  memberKeys: openpgp.PublicKey[];
  limits: Limits;
  /** Lower-cased address in the outer From, to prefer that member when several share a key. */
  fromAddress?: string;
}

/** Internal control flow only: openMessage turns it into a value before returning. */
class OpenFailure extends Error {
  constructor(readonly failure: CryptoFailure) {
    super(failure.detail);
  }
}

function fail(code: CryptoFailure['code'], detail: string): never {
  throw new OpenFailure({ code, detail });
}

const UNSIGNED: Verification = { signed: false, valid: false };
const BEGIN_MESSAGE = '-----BEGIN PGP MESSAGE-----';
const END_MESSAGE = '-----END PGP MESSAGE-----';

function addressOf(from: string | undefined): string | undefined {
  if (!from) return undefined;
  const angle = /<([^<>@\s]+@[^<>\s]+)>/.exec(from)?.[1];
  if (angle) return angle.toLowerCase();
  // Split, not a regex search: an unanchored /[^…]+@/ backtracks quadratically over a long display name
  // (a 100 KB From took 5 s, a 1 MiB one minutes, blocking the pipeline).
  const bare = from.split(/[\s<>"',;:]+/).find((token) => token.indexOf('@') > 0 && token.indexOf('@') < token.length - 1);
  return bare?.toLowerCase();
}

/** Decrypts (with the list key) and verifies one incoming message. Bad input is a failure value, never a throw. */
export async function openMessage(
  raw: Buffer,
  options: { listKey: ListKey; members: Member[]; limits?: Partial<Limits> },
): Promise<OpenResult> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  try {
    const parsed = parseMime(raw, { maxDepth: limits.maxMimeDepth, maxParts: limits.maxMimeParts });
    if (!parsed.ok) return { ok: false, failure: parsed.error };
    const memberKeys: openpgp.PublicKey[] = [];
    for (const member of options.members) memberKeys.push(await openpgpKeyOf(member.key));
    const context: OpenContext = {
      verifyAt: new Date(Date.now() + SIGNATURE_CLOCK_SKEW_MS),
      listKey: options.listKey,
      list: unlockedListKey(options.listKey),
      members: options.members,
      memberKeys,
      limits,
      fromAddress: addressOf(headerValue(parsed.entity.headers, 'from')),
    };
    return { ok: true, message: await openEntity(parsed.entity, context) };
  } catch (error) {
    if (error instanceof OpenFailure) return { ok: false, failure: error.failure };
    throw error;
  }
}

function leafParts(entity: MimeEntity): MimeEntity[] {
  return entity.children.length === 0 ? [entity] : entity.children.flatMap(leafParts);
}

/** `text/html`, or `"patch.diff" (text/x-diff)`: what readers need to ask the poster for it; no content. */
function describePart(part: MimeEntity): string {
  const disposition = headerValue(part.headers, 'content-disposition') ?? '';
  const named = /filename\*?="?([^";]+)"?/i.exec(disposition)?.[1] ?? part.contentType.params.name;
  const name = named ? `"${named.replace(/[\r\n"]/g, '').slice(0, 100)}" ` : '';
  return name ? `${name}(${part.contentType.type})` : `${part.contentType.type} part`;
}

function childOfType(entity: MimeEntity, type: string): MimeEntity | undefined {
  return entity.children.find((child) => child.contentType.type === type);
}

function isExchangeMangled(entity: MimeEntity): MimeEntity | undefined {
  if (entity.contentType.type !== 'multipart/mixed') return undefined;
  const version = childOfType(entity, 'application/pgp-encrypted');
  if (!version || !/Version:\s*1/i.test(decodeBody(version).toString('latin1'))) return undefined;
  return entity.children.find((child) => child !== version && decodeBody(child).includes(BEGIN_MESSAGE));
}

async function openEntity(entity: MimeEntity, context: OpenContext): Promise<OpenedMessage> {
  const type = entity.contentType.type;
  if (type === 'multipart/encrypted') {
    const encryptedPart = childOfType(entity, 'application/octet-stream') ?? entity.children[1];
    if (!encryptedPart) fail('malformed', 'multipart/encrypted without an encrypted part');
    const decrypted = await decryptArmored(decodeBody(encryptedPart), context);
    return openDecryptedEntity(decrypted, 'pgp-mime', context);
  }
  const mangled = isExchangeMangled(entity);
  if (mangled) {
    const decrypted = await decryptArmored(decodeBody(mangled), context);
    return openDecryptedEntity(decrypted, 'exchange-mangled', context);
  }
  if (type === 'multipart/signed') {
    const [signedPart, signaturePart] = entity.children;
    if (!signedPart || !signaturePart) fail('malformed', 'multipart/signed without two parts');
    const verification = await verifyDetached(signedPart.raw, decodeBody(signaturePart).toString('latin1'), context);
    return {
      encrypted: false,
      entity: signedPart.raw,
      protectedHeaders: protectedHeadersOf(signedPart.headers),
      verification,
      format: 'signed-only',
      signatureCovers: 'entity',
    };
  }
  const inline = findInlineText(entity);
  if (inline) {
    const bytes = decodeBody(inline);
    if (bytes.includes(BEGIN_MESSAGE)) return openInlineEncrypted(entity, inline, bytes, context);
    const { verification, signedText } = await verifyClearsigned(bytes, context);
    const beside = attachmentsBeside(entity, inline);
    const wholeText = onlyClearsigned(bytes) && (inline === entity || beside !== null);
    const attachments = beside && signedText ? checkAttachments(signedText, beside.map((part, index) => ({ name: attachmentName(part, index), bytes: decodeBody(part) }))) : undefined;
    return {
      encrypted: false,
      entity: contentEntity(entity),
      protectedHeaders: {},
      verification,
      format: 'inline',
      signatureCovers: wholeText && (attachments ?? []).every((check) => check.covered) ? 'entity' : 'part',
      ...(attachments ? { attachments } : {}),
    };
  }
  return { encrypted: false, entity: contentEntity(entity), protectedHeaders: {}, verification: UNSIGNED, format: 'plain' };
}

/**
 * Inline PGP: the text part holds an armored message (gpg -sea, or clearsigned then encrypted), and files beside it
 * may each be encrypted on their own (NAME.pgp, as Enigmail and gpg users send them). The text keeps its bytes and is
 * labelled with its real charset; encrypted files are decrypted and attached under their name without .pgp, files in
 * clear are left out (named in the readers' note).
 */
async function openInlineEncrypted(root: MimeEntity, inline: MimeEntity, armored: Buffer, context: OpenContext): Promise<OpenedMessage> {
  const decrypted = await decryptArmored(armored, context);
  const plaintext = canonicalCrlf(decrypted.plaintext);
  let verification = decrypted.verification;
  let signedText: Buffer | undefined = verification.signed ? plaintext : undefined;
  let wholeText = true;
  if (!verification.signed && plaintext.includes(BEGIN_SIGNED)) {
    ({ verification, signedText } = await verifyClearsigned(plaintext, context));
    wholeText = onlyClearsigned(plaintext);
  }
  // The bytes are what the poster's gpg encrypted; only the label says how to read them (RFC 4880 6.2 Charset).
  const charset = armorCharset(armored) ?? inline.contentType.params.charset ?? 'utf-8';
  const text = Buffer.concat([Buffer.from(`Content-Type: text/plain; charset=${charset.replace(/[^A-Za-z0-9._:-]/g, '')}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`), plaintext]);
  const base = { protectedHeaders: {}, verification, format: 'inline', charset } as const;
  const beside = attachmentsBeside(root, inline);
  if (!beside || beside.length === 0) {
    // Parts that are neither the armored text nor attachments beside it (an HTML twin) are left out; readers are told.
    const dropped = leafParts(root).filter((part) => part !== inline).map(describePart);
    return { ...base, encrypted: decrypted.encrypted, entity: text, signatureCovers: wholeText ? 'entity' : 'part', ...(dropped.length > 0 ? { droppedParts: dropped } : {}) };
  }
  const files: Attachment[] = [];
  const parts: Buffer[] = [text];
  const dropped: string[] = [];
  for (const [index, part] of beside.entries()) {
    const body = decodeBody(part);
    if (!isOpenpgpMessage(body)) {
      // A file in clear beside encrypted text is covered by neither: left out, and the readers' note names it.
      dropped.push(describePart(part));
      continue;
    }
    const file = await decryptPacketsOrArmor(body, context);
    const plainName = attachmentName(part, index).replace(/\.(pgp|gpg|asc)$/i, '');
    files.push({ name: plainName, bytes: file.plaintext });
    parts.push(fileEntity(plainName, file.plaintext));
  }
  const leftOut = dropped.length > 0 ? { droppedParts: dropped } : {};
  if (files.length === 0) return { ...base, encrypted: decrypted.encrypted, entity: text, signatureCovers: wholeText ? 'entity' : 'part', ...leftOut };
  const attachments = signedText ? checkAttachments(signedText, files) : files.map((file, index) => uncovered(file, index));
  return {
    ...base,
    encrypted: decrypted.encrypted,
    entity: mixedOf(parts),
    signatureCovers: wholeText && attachments.every((check) => check.covered) ? 'entity' : 'part',
    attachments,
    ...leftOut,
  };
}

function uncovered(file: Attachment, index: number): AttachmentCheck {
  return { ...checkAttachments(Buffer.alloc(0), [file])[0], position: index + 1 };
}

/** The parts after the text in a multipart/mixed whose first part is that text: its attachments. Null for other shapes. */
function attachmentsBeside(root: MimeEntity, text: MimeEntity): MimeEntity[] | null {
  return root.contentType.type === 'multipart/mixed' && root.children[0] === text ? root.children.slice(1) : null;
}

function attachmentName(part: MimeEntity, index: number): string {
  return fileNameOf(part) ?? `attachment ${index + 1} (${part.contentType.type})`;
}

/** The Charset: armor header of the first armored message, if the sender's program wrote one. */
function armorCharset(data: Buffer): string | undefined {
  const start = data.indexOf(BEGIN_MESSAGE);
  if (start === -1) return undefined;
  const head = data.toString('latin1', start, Math.min(data.length, start + 1024)).split(/\r?\n/).slice(1);
  for (const line of head) {
    if (line.trim() === '') return undefined;
    const charset = /^Charset:\s*([A-Za-z0-9._:-]+)/i.exec(line)?.[1];
    if (charset) return charset;
  }
  return undefined;
}

/** An OpenPGP message, armored or binary (a new- or old-format PKESK, SKESK, signature or compressed packet first). */
function isOpenpgpMessage(data: Buffer): boolean {
  if (data.subarray(0, 200).includes(BEGIN_MESSAGE)) return true;
  const first = data[0];
  if (first === undefined || (first & 0x80) === 0) return false;
  const tag = first & 0x40 ? first & 0x3f : (first >> 2) & 0x0f;
  return tag === 1 || tag === 3 || tag === 4 || tag === 8;
}

/**
 * The text part that carries inline PGP: the entity itself, or the plain-text alternative/first text part of a
 * multipart (an HTML twin is ignored: it is either the same armor or unsigned markup).
 */
function findInlineText(entity: MimeEntity): MimeEntity | undefined {
  const type = entity.contentType.type;
  if (type === 'text/plain') {
    const bytes = decodeBody(entity);
    return bytes.includes(BEGIN_MESSAGE) || bytes.includes(BEGIN_SIGNED) ? entity : undefined;
  }
  if (type === 'multipart/alternative') {
    // The plain-text alternative carries the armor; the HTML twin is never trusted.
    for (const child of entity.children) {
      if (child.contentType.type === 'text/html') continue;
      const found = findInlineText(child);
      if (found) return found;
    }
    return undefined;
  }
  if (type === 'multipart/mixed' || type === 'multipart/related') {
    // Only the first part is the body; later parts are attachments (an attached .asc file is not the message).
    const first = entity.children[0];
    return first ? findInlineText(first) : undefined;
  }
  return undefined;
}

function protectedHeadersOf(headers: MimeHeader[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const header of headers) {
    if (isContentHeader(header.key)) continue;
    if (!(header.name in result)) result[header.name] = header.value;
  }
  return result;
}

interface Decrypted {
  plaintext: Buffer;
  verification: Verification;
  encrypted: boolean;
}

async function openDecryptedEntity(decrypted: Decrypted, format: string, context: OpenContext): Promise<OpenedMessage> {
  const parsed = parseMime(decrypted.plaintext, { maxDepth: context.limits.maxMimeDepth, maxParts: context.limits.maxMimeParts });
  if (!parsed.ok) fail(parsed.error.code, `inside the ciphertext: ${parsed.error.detail}`);
  const inner = parsed.entity;
  const protectedHeaders = protectedHeadersOf(inner.headers);
  if (decrypted.verification.signed) {
    return { encrypted: true, entity: decrypted.plaintext, protectedHeaders, verification: decrypted.verification, format, signatureCovers: 'entity' };
  }
  if (inner.contentType.type === 'multipart/signed') {
    // Signed, then encrypted (RFC 3156 6.1): the signature covers the first inner part only.
    const [signedPart, signaturePart] = inner.children;
    if (!signedPart || !signaturePart) fail('malformed', 'multipart/signed inside the ciphertext without two parts');
    const verification = await verifyDetached(signedPart.raw, decodeBody(signaturePart).toString('latin1'), context);
    return {
      encrypted: true,
      entity: signedPart.raw,
      protectedHeaders: { ...protectedHeadersOf(signedPart.headers), ...protectedHeaders },
      verification,
      format,
      signatureCovers: 'entity',
    };
  }
  const inline = findInlineText(inner);
  const inlineBytes = inline ? decodeBody(inline) : undefined;
  if (inline && inlineBytes?.includes(BEGIN_SIGNED)) {
    // An advisory clearsigned by its author and then sent PGP/MIME encrypted; XSAs carry their patches beside it,
    // each vouched for by its digest in the signed text.
    const { verification, signedText } = await verifyClearsigned(inlineBytes, context);
    const beside = attachmentsBeside(inner, inline);
    const wholeText = onlyClearsigned(inlineBytes) && (inline === inner || beside !== null);
    const attachments = beside && signedText ? checkAttachments(signedText, beside.map((part, index) => ({ name: attachmentName(part, index), bytes: decodeBody(part) }))) : undefined;
    const covers = wholeText && (attachments ?? []).every((check) => check.covered) ? 'entity' : 'part';
    return { encrypted: true, entity: decrypted.plaintext, protectedHeaders, verification, format, signatureCovers: covers, ...(attachments ? { attachments } : {}) };
  }
  return { encrypted: true, entity: decrypted.plaintext, protectedHeaders, verification: UNSIGNED, format };
}

/** The bytes openpgp.js returned, as a Buffer without copying them (a 25 MiB post would otherwise exist twice). */
function bufferView(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The armored block from its BEGIN line to the end of its END line (or of the data), as a view of `data`. */
function armoredBlock(data: Buffer, begin: string, end: string, limits: Limits): Buffer {
  const start = data.indexOf(begin);
  if (start === -1) fail('bad-armor', `no ${begin} line`);
  const endIndex = data.indexOf(end, start);
  const stop = endIndex === -1 ? data.length : endIndex + end.length;
  if (stop - start > limits.maxArmorBytes) fail('too-large', `armored block of ${stop - start} bytes exceeds ${limits.maxArmorBytes}`);
  return data.subarray(start, stop);
}

/**
 * Plain armor as GnuPG and openpgp.js write it: the BEGIN line, a blank line (no armor headers), lines of base64 with
 * padding only at the very end, an optional checksum line, the END line. Either line ending.
 */
const ARMOR_HEAD = /^-----BEGIN PGP MESSAGE-----\r?\n\r?\n/;
const ARMOR_TAIL = /(={0,2})\r?\n(?:=[A-Za-z0-9+/]{4}\r?\n)?-----END PGP MESSAGE-----$/;
const BASE64_LINES = /^[A-Za-z0-9+/\r\n]*={0,2}$/;
/** Decoded in blocks of about this many characters, ending at line ends, so no string holds the whole message. */
const DECODE_BLOCK = 1024 * 1024;

/**
 * The binary packets of a canonical armored block, decoded natively; null for anything else (armor headers, stray
 * characters, odd line lengths), which then goes through openpgp.js's own unarmor. Why: openpgp.js unarmors a big
 * message as strings, and for a 25 MiB post that took about 140 MB more memory than decoding it here. For canonical
 * armor both give the same bytes (openpgp.js ignores the checksum, too).
 */
function canonicalArmorBody(block: Buffer): Uint8Array | null {
  const head = ARMOR_HEAD.exec(block.toString('latin1', 0, Math.min(block.length, 64)));
  if (!head) return null;
  const tailFrom = Math.max(head[0].length, block.length - 128);
  const tail = ARMOR_TAIL.exec(block.toString('latin1', tailFrom));
  if (!tail) return null;
  const dataStart = head[0].length;
  const dataEnd = tailFrom + tail.index + tail[1].length;
  if (dataEnd <= dataStart) return null;
  const out = Buffer.allocUnsafe(Math.ceil(((dataEnd - dataStart) * 3) / 4));
  let written = 0;
  for (let from = dataStart; from < dataEnd; ) {
    let to = Math.min(from + DECODE_BLOCK, dataEnd);
    if (to < dataEnd) {
      const lineEnd = block.indexOf(0x0a, to);
      to = lineEnd === -1 || lineEnd + 1 >= dataEnd ? dataEnd : lineEnd + 1;
    }
    const text = block.toString('latin1', from, to);
    if (!BASE64_LINES.test(text)) return null;
    let lineBreaks = 0;
    for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lineBreaks += 1;
    for (let at = text.indexOf('\r'); at !== -1; at = text.indexOf('\r', at + 1)) lineBreaks += 1;
    // Each block must be whole base64 quanta (padding only in the last), or the blocks would not decode apart.
    if ((text.length - lineBreaks) % 4 !== 0 || (to < dataEnd && text.includes('='))) return null;
    written += out.write(text, written, 'base64');
    from = to;
  }
  return new Uint8Array(out.buffer, out.byteOffset, written);
}

/** A compressed packet refused by the early ratio check (decompression.ts) or by the size limit; nothing else. */
function failIfBomb(error: unknown, stage: string): void {
  const ratio = refusedRatio(error);
  if (ratio !== undefined) fail('compression-bomb', `decompresses at a compression ratio above ${ratio}:1 (${stage})`);
  if (openpgpFailureKind(error) === 'decompressed-size') fail('compression-bomb', `decompressed data exceeds the limit (${stage})`);
}

function classifyOpenpgpError(error: unknown, stage: string): never {
  const message = errorMessage(error);
  failIfBomb(error, stage);
  const kind = openpgpFailureKind(error);
  if (kind === 'no-session-key') fail('not-for-this-key', `cannot decrypt: ${message}`);
  if (kind === 'integrity') fail('decrypt-failed', `integrity check failed: ${message}`);
  fail('decrypt-failed', `${stage}: ${message}`);
}

/** An inline-encrypted attachment: armored or binary packets. */
async function decryptPacketsOrArmor(data: Buffer, context: OpenContext): Promise<Decrypted> {
  if (data.subarray(0, 200).includes(BEGIN_MESSAGE)) return decryptArmored(data, context);
  if (data.length > context.limits.maxArmorBytes) fail('too-large', `encrypted attachment of ${data.length} bytes exceeds ${context.limits.maxArmorBytes}`);
  const config = readingConfig(context.limits);
  let message: openpgp.Message<string>;
  try {
    message = (await openpgp.readMessage({ binaryMessage: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), config })) as unknown as openpgp.Message<string>;
  } catch (error) {
    failIfBomb(error, 'reading an attachment');
    fail('bad-armor', `unreadable OpenPGP attachment: ${errorMessage(error)}`);
  }
  return decryptMessage(message, context, config);
}

async function decryptArmored(data: Buffer, context: OpenContext): Promise<Decrypted> {
  const armored = armoredBlock(data, BEGIN_MESSAGE, END_MESSAGE, context.limits);
  const config = readingConfig(context.limits);
  let message: openpgp.Message<string>;
  try {
    const binaryMessage = canonicalArmorBody(armored);
    message = binaryMessage
      ? ((await openpgp.readMessage({ binaryMessage, config })) as unknown as openpgp.Message<string>)
      : await openpgp.readMessage({ armoredMessage: armored.toString('latin1'), config });
  } catch (error) {
    failIfBomb(error, 'reading the message');
    fail('bad-armor', `unreadable OpenPGP message: ${errorMessage(error)}`);
  }
  return decryptMessage(message, context, config);
}

async function decryptMessage(message: openpgp.Message<string>, context: OpenContext, config: openpgp.PartialConfig): Promise<Decrypted> {
  const recipients = message.getEncryptionKeyIDs();
  if (recipients.length === 0) {
    // Not encrypted at all: an opaque signed message (gpg --sign --armor).
    try {
      const result = await openpgp.verify({ message, verificationKeys: context.memberKeys, format: 'binary', config, date: context.verifyAt });
      const plaintext = bufferView(result.data as Uint8Array);
      return { plaintext, verification: await evaluateSignatures(result.signatures, context), encrypted: false };
    } catch (error) {
      if (error instanceof OpenFailure) throw error;
      classifyOpenpgpError(error, 'reading the signed message');
    }
  }
  const forUs = recipients.some((keyId) => /^0+$/.test(keyId.toHex()) || context.list.decryptionKeyIds.has(keyId.toHex()));
  if (!forUs) {
    // Members who kept the key from before a rotation deserve to hear that, not that their mail is unreadable.
    const replaced = await replacedListKeys(context.listKey);
    if (recipients.some((keyId) => replaced.some((old) => old.decryptionKeyIds.has(keyId.toHex())))) {
      fail('replaced-list-key', `encrypted to ${recipients.map((keyId) => keyId.toHex().toUpperCase()).join(', ')}, a key this list used before a rotation`);
    }
    fail('not-for-this-key', `encrypted to ${recipients.map((keyId) => keyId.toHex().toUpperCase()).join(', ')}, not to the list key`);
  }
  try {
    const result = await openpgp.decrypt({
      message,
      decryptionKeys: context.list.privateKey,
      verificationKeys: context.memberKeys,
      date: context.verifyAt,
      format: 'binary',
      config,
    });
    const plaintext = bufferView(result.data as Uint8Array);
    return { plaintext, verification: await evaluateSignatures(result.signatures, context), encrypted: true };
  } catch (error) {
    if (error instanceof OpenFailure) throw error;
    classifyOpenpgpError(error, 'decrypting');
  }
}

async function verifyDetached(signedBytes: Buffer, signatureText: string, context: OpenContext): Promise<Verification> {
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature: signatureText });
  } catch (error) {
    return { signed: true, valid: false, reason: `unreadable signature: ${errorMessage(error)}` };
  }
  const canonical = canonicalCrlf(signedBytes);
  const message = await openpgp.createMessage({ binary: new Uint8Array(canonical.buffer, canonical.byteOffset, canonical.byteLength) });
  try {
    const result = await openpgp.verify({ message, signature, verificationKeys: context.memberKeys, format: 'binary', date: context.verifyAt });
    return await evaluateSignatures(result.signatures, context);
  } catch (error) {
    return { signed: true, valid: false, reason: `signature not verifiable: ${errorMessage(error)}` };
  }
}

/** Verifies a clearsigned block on its bytes (RFC 4880 7.1), whatever the charset; returns what the signature covers. */
async function verifyClearsigned(data: Buffer, context: OpenContext): Promise<{ verification: Verification; signedText?: Buffer }> {
  const block = readClearsigned(data);
  if (!block) return { verification: { signed: true, valid: false, reason: 'clearsigned text without its signature' } };
  if (block.length > context.limits.maxArmorBytes) fail('too-large', `clearsigned block of ${block.length} bytes exceeds ${context.limits.maxArmorBytes}`);
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature: block.armoredSignature });
  } catch (error) {
    return { verification: { signed: true, valid: false, reason: `unreadable clearsigned text: ${errorMessage(error)}` } };
  }
  const text = block.signedText;
  try {
    const message = await openpgp.createMessage({ binary: new Uint8Array(text.buffer, text.byteOffset, text.byteLength) });
    const result = await openpgp.verify({ message, signature, verificationKeys: context.memberKeys, format: 'binary', date: context.verifyAt });
    return { verification: await evaluateSignatures(result.signatures, context), signedText: text };
  } catch (error) {
    return { verification: { signed: true, valid: false, reason: `signature not verifiable: ${errorMessage(error)}` } };
  }
}

type SignatureResults = Awaited<ReturnType<typeof openpgp.verify>>['signatures'];

/** The verified signature on its own (a one-pass signature is the same packet a detached one would be). */
async function detachedForm(signature: SignatureResults[number]): Promise<Pick<Verification, 'detachedSignature' | 'hashAlgorithm'>> {
  const packet = (await signature.signature).packets[0];
  const detachedSignature = (await signature.signature).armor();
  const name = packet?.hashAlgorithm ? openpgp.enums.hash[packet.hashAlgorithm] : undefined;
  return { detachedSignature, ...(name ? { hashAlgorithm: String(name).toLowerCase() } : {}) };
}

/** Members whose registered key (primary or subkey) has this key id; the one named in From first. */
function membersWithKeyId(keyIdHex: string, context: OpenContext): Array<{ member: Member; key: openpgp.PublicKey }> {
  const matches: Array<{ member: Member; key: openpgp.PublicKey }> = [];
  context.members.forEach((member, index) => {
    const key = context.memberKeys[index];
    if (key.getKeys().some((part) => part.getKeyID().toHex() === keyIdHex)) matches.push({ member, key });
  });
  return matches.sort((a, b) => Number(b.member.address.toLowerCase() === context.fromAddress) - Number(a.member.address.toLowerCase() === context.fromAddress));
}

/**
 * What identifies one signature: its hashed area (type, algorithms, creation time, issuer) and the hash prefix, which
 * the signature itself protects. Not the unhashed subpackets or the MPIs' encoding, which anyone can change without
 * breaking the signature.
 */
function signatureDigest(packet: openpgp.SignaturePacket | undefined): string | undefined {
  if (!packet?.signatureData || !packet.signedHashValue) return undefined;
  return createHash('sha256').update(packet.signatureData).update(packet.signedHashValue).digest('hex');
}

/** A signature counts only when openpgp.js verified it with a member's registered key that is neither revoked nor expired. */
async function evaluateSignatures(signatures: SignatureResults, context: OpenContext): Promise<Verification> {
  if (signatures.length === 0) return UNSIGNED;
  let best: Verification | undefined;
  for (const signature of signatures) {
    const keyIdHex = signature.keyID.toHex();
    let signedAt: Date | undefined;
    let digest: string | undefined;
    try {
      const packet = (await signature.signature).packets[0];
      signedAt = packet?.created ?? undefined;
      digest = signatureDigest(packet);
    } catch {
      signedAt = undefined;
    }
    const matches = membersWithKeyId(keyIdHex, context);
    const base: Verification = { signed: true, valid: false, signingKeyId: keyIdHex.toUpperCase(), signedAt, ...(digest ? { digest } : {}) };
    if (matches.length === 0) {
      best ??= { ...base, reason: 'signed by a key that belongs to no member' };
      continue;
    }
    const { member, key } = matches[0];
    const fingerprint = key.getFingerprint().toUpperCase();
    try {
      await signature.verified;
    } catch (error) {
      best ??= { ...base, signingFingerprint: fingerprint, reason: `bad signature: ${errorMessage(error)}` };
      continue;
    }
    const blocking = (await checkMemberKey(member.key, member.address)).filter((problem) => problem.code === 'revoked' || problem.code === 'expired');
    if (blocking.length > 0) {
      best ??= { ...base, signingFingerprint: fingerprint, reason: `signing key is ${blocking.map((problem) => problem.code).join(' and ')}` };
      continue;
    }
    return { ...base, valid: true, signingFingerprint: fingerprint, memberAddress: member.address, ...(await detachedForm(signature)) };
  }
  return best ?? UNSIGNED;
}
