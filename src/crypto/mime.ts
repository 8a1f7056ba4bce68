// Byte-exact MIME for the crypto layer: finds headers and multipart children by offset, so a signed part can be verified over its exact raw bytes (and rebuilds a post from inline-encrypted parts).
//
// Why not a library: mailparser decodes and re-encodes (the bytes a signature covers are lost), and
// @zone-eu/mailsplit is a stream transformer whose events carry no byte offsets, so rebuilding the
// exact bytes of one child (including where the CRLF before a delimiter belongs, RFC 2046 5.1.1)
// would be more fragile than splitting by offset here. This splitter only finds structure; decoding of
// header words and charsets is left to the callers that display text.

import { randomBytes } from 'node:crypto';

export interface MimeHeader {
  /** Header name as written. */
  name: string;
  /** Lower-cased name, for lookups. */
  key: string;
  /** Unfolded value, leading whitespace trimmed, otherwise as written (encoded words stay encoded). */
  value: string;
  /** The header's raw lines, including folding and the final line break. */
  raw: Buffer;
}

export interface ContentType {
  /** Lower-cased type/subtype; text/plain when absent. */
  type: string;
  /** Parameter names lower-cased; values unquoted. */
  params: Record<string, string>;
}

export interface MimeEntity {
  /** The whole entity, headers and body, exactly as received. */
  raw: Buffer;
  headers: MimeHeader[];
  /** The body after the blank line, exactly as received (still transfer-encoded). */
  body: Buffer;
  contentType: ContentType;
  /** Lower-cased Content-Transfer-Encoding, '7bit' when absent. */
  transferEncoding: string;
  /** Children of a multipart entity, in order; empty otherwise. */
  children: MimeEntity[];
  depth: number;
}

export interface MimeLimits {
  maxDepth: number;
  maxParts: number;
}

export type MimeError = { code: 'too-deep' | 'too-many-parts' | 'malformed'; detail: string };
export type MimeResult = { ok: true; entity: MimeEntity } | { ok: false; error: MimeError };

const LF = 0x0a;
const CR = 0x0d;

class MimeLimitError extends Error {
  constructor(readonly mimeError: MimeError) {
    super(mimeError.detail);
  }
}

/** Splits a message (or an entity) into its MIME tree without copying or altering any bytes. */
export function parseMime(raw: Buffer, limits: MimeLimits): MimeResult {
  const counter = { parts: 0 };
  try {
    return { ok: true, entity: parseEntity(raw, 0, limits, counter) };
  } catch (error) {
    if (error instanceof MimeLimitError) return { ok: false, error: error.mimeError };
    throw error;
  }
}

function parseEntity(raw: Buffer, depth: number, limits: MimeLimits, counter: { parts: number }): MimeEntity {
  counter.parts += 1;
  if (counter.parts > limits.maxParts) {
    throw new MimeLimitError({ code: 'too-many-parts', detail: `more than ${limits.maxParts} MIME parts` });
  }
  if (depth > limits.maxDepth) {
    throw new MimeLimitError({ code: 'too-deep', detail: `MIME nesting deeper than ${limits.maxDepth}` });
  }
  const { headers, bodyStart } = splitHeaders(raw);
  const body = raw.subarray(bodyStart);
  const contentType = parseContentType(headerValue(headers, 'content-type'));
  const transferEncoding = (headerValue(headers, 'content-transfer-encoding') ?? '7bit').trim().toLowerCase();
  const entity: MimeEntity = { raw, headers, body, contentType, transferEncoding, children: [], depth };
  if (contentType.type.startsWith('multipart/')) {
    const boundary = contentType.params.boundary;
    if (!boundary) throw new MimeLimitError({ code: 'malformed', detail: `${contentType.type} without a boundary` });
    for (const part of splitMultipart(body, boundary)) {
      entity.children.push(parseEntity(part, depth + 1, limits, counter));
    }
  }
  return entity;
}

/** Finds the header block; tolerates LF-only line ends (messages stored by Unix tools). */
export function splitHeaders(raw: Buffer): { headers: MimeHeader[]; bodyStart: number } {
  const headers: MimeHeader[] = [];
  let position = 0;
  let current: { start: number; end: number } | null = null;
  const flush = (): void => {
    if (!current) return;
    const rawHeader = raw.subarray(current.start, current.end);
    const text = rawHeader.toString('latin1');
    const colon = text.indexOf(':');
    if (colon > 0) {
      const name = text.slice(0, colon).trim();
      const value = text
        .slice(colon + 1)
        .replace(/\r?\n(?=[ \t])/g, '')
        .replace(/\r?\n$/, '')
        .trim();
      headers.push({ name, key: name.toLowerCase(), value, raw: rawHeader });
    }
    current = null;
  };
  while (position < raw.length) {
    const newline = raw.indexOf(LF, position);
    const lineEnd = newline === -1 ? raw.length : newline + 1;
    const isBlank = newline === position || (newline === position + 1 && raw[position] === CR);
    if (isBlank) {
      flush();
      return { headers, bodyStart: lineEnd };
    }
    const first = raw[position];
    if ((first === 0x20 || first === 0x09) && current) {
      current.end = lineEnd;
    } else {
      flush();
      current = { start: position, end: lineEnd };
    }
    position = lineEnd;
  }
  flush();
  return { headers, bodyStart: raw.length };
}

export function headerValue(headers: MimeHeader[], key: string): string | undefined {
  return headers.find((header) => header.key === key)?.value;
}

/** Parses `type/subtype; name=value; name="quoted value"` (RFC 2045 5.1); RFC 2231 continuations are not needed for the parameters used here. */
export function parseContentType(value: string | undefined): ContentType {
  if (!value) return { type: 'text/plain', params: {} };
  const params: Record<string, string> = {};
  const semicolon = value.indexOf(';');
  const type = (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase() || 'text/plain';
  const pattern = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  const rest = semicolon === -1 ? '' : value.slice(semicolon);
  for (const match of rest.matchAll(pattern)) {
    const name = match[1].toLowerCase();
    const quoted = match[2];
    params[name] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : match[3];
  }
  return { type, params };
}

/**
 * Returns each body part of a multipart body as a view of the original bytes. The line break before
 * a delimiter belongs to the delimiter (RFC 2046 5.1.1), so it is not part of the preceding body part.
 */
export function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const parts: Buffer[] = [];
  let partStart = -1;
  let searchFrom = 0;
  while (searchFrom <= body.length) {
    const found = body.indexOf(delimiter, searchFrom);
    if (found === -1) break;
    searchFrom = found + delimiter.length;
    if (found > 0 && body[found - 1] !== LF) continue;
    let cursor = found + delimiter.length;
    const closing = body[cursor] === 0x2d && body[cursor + 1] === 0x2d;
    if (closing) cursor += 2;
    while (body[cursor] === 0x20 || body[cursor] === 0x09) cursor += 1;
    let lineEnd: number;
    if (cursor >= body.length) lineEnd = body.length;
    else if (body[cursor] === LF) lineEnd = cursor + 1;
    else if (body[cursor] === CR && body[cursor + 1] === LF) lineEnd = cursor + 2;
    else continue; // e.g. a longer boundary that starts with this one
    if (partStart !== -1) {
      let partEnd = found;
      if (partEnd > partStart && body[partEnd - 1] === LF) partEnd -= 1;
      if (partEnd > partStart && body[partEnd - 1] === CR) partEnd -= 1;
      parts.push(body.subarray(partStart, Math.max(partStart, partEnd)));
    }
    if (closing) return parts;
    partStart = lineEnd;
    searchFrom = lineEnd;
  }
  // A missing closing delimiter is common in truncated or hand-made mail; keep the last part.
  if (partStart !== -1 && partStart <= body.length) parts.push(body.subarray(partStart));
  return parts;
}

/** Line ends to CRLF, as RFC 3156 5 requires before a multipart/signed part is verified. */
export function canonicalCrlf(data: Buffer): Buffer {
  let bareLf = 0;
  for (let index = data.indexOf(LF); index !== -1; index = data.indexOf(LF, index + 1)) {
    if (index === 0 || data[index - 1] !== CR) bareLf += 1;
  }
  if (bareLf === 0) return data;
  const out = Buffer.allocUnsafe(data.length + bareLf);
  let written = 0;
  let from = 0;
  for (let index = data.indexOf(LF); index !== -1; index = data.indexOf(LF, index + 1)) {
    if (index === 0 || data[index - 1] !== CR) {
      written += data.copy(out, written, from, index);
      out[written++] = CR;
      from = index;
    }
  }
  written += data.copy(out, written, from);
  return out.subarray(0, written);
}

/** Removes the Content-Transfer-Encoding; unknown encodings are returned unchanged. */
export function decodeBody(entity: MimeEntity): Buffer {
  switch (entity.transferEncoding) {
    case 'base64':
      return Buffer.from(entity.body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
    case 'quoted-printable':
      return decodeQuotedPrintable(entity.body);
    default:
      return entity.body;
  }
}

export function decodeQuotedPrintable(input: Buffer): Buffer {
  const out = Buffer.allocUnsafe(input.length);
  let written = 0;
  for (let index = 0; index < input.length; index += 1) {
    const byte = input[index];
    if (byte !== 0x3d) {
      out[written++] = byte;
      continue;
    }
    // Soft line break: '=' followed by optional trailing whitespace and a line end.
    let cursor = index + 1;
    while (input[cursor] === 0x20 || input[cursor] === 0x09) cursor += 1;
    if (input[cursor] === LF) {
      index = cursor;
      continue;
    }
    if (input[cursor] === CR && input[cursor + 1] === LF) {
      index = cursor + 1;
      continue;
    }
    const hex = input.toString('latin1', index + 1, index + 3);
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      out[written++] = parseInt(hex, 16);
      index += 2;
    } else {
      out[written++] = byte;
    }
  }
  return out.subarray(0, written);
}

/** Headers that describe the content itself (kept when a message body becomes an inner entity). */
export function isContentHeader(key: string): boolean {
  return key.startsWith('content-') || key === 'mime-version';
}

/** The entity without its transport headers: content headers as written, a blank line, the body unchanged. */
export function contentEntity(entity: MimeEntity): Buffer {
  const kept = entity.headers.filter((header) => isContentHeader(header.key) && header.key !== 'mime-version');
  const chunks: Buffer[] = kept.map((header) => (header.raw.at(-1) === LF ? header.raw : Buffer.concat([header.raw, Buffer.from('\r\n')])));
  const lineBreak = entity.raw.includes('\r\n') ? '\r\n' : '\n';
  chunks.push(Buffer.from(lineBreak), entity.body);
  return Buffer.concat(chunks);
}

/** multipart/mixed over whole entities, for a post rebuilt from inline-encrypted parts. */
export function mixedOf(parts: Buffer[]): Buffer {
  const boundary = `embargo-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [Buffer.from(`Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n`)];
  for (const part of parts) chunks.push(Buffer.from(`--${boundary}\r\n`), part, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

/** A file as an attachment entity, base64 so its bytes arrive unchanged. */
export function fileEntity(name: string, bytes: Buffer): Buffer {
  const quoted = name.replace(/["\\\r\n]/g, '_');
  const encoded = bytes.toString('base64').replace(/.{1,76}/g, '$&\r\n');
  return Buffer.from(
    `Content-Type: application/octet-stream; name="${quoted}"\r\nContent-Disposition: attachment; filename="${quoted}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${encoded}`,
  );
}

/** The file name a part was sent under (Content-Disposition filename, else Content-Type name), if any. */
export function fileNameOf(entity: MimeEntity): string | undefined {
  const disposition = parseContentType(headerValue(entity.headers, 'content-disposition'));
  return disposition.params.filename ?? entity.contentType.params.name;
}
