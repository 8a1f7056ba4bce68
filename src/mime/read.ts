// The one byte-exact MIME reader: finds header fields, bodies and multipart children by offset, copying and decoding nothing, so a signed part can be verified over its exact bytes and every other reader (lists, bounces) sees the same structure.
//
// Why not a library: mailparser decodes and re-encodes (the bytes a signature covers are lost), and
// @zone-eu/mailsplit is a stream transformer whose events carry no byte offsets, so rebuilding the
// exact bytes of one child (including where the CRLF before a delimiter belongs, RFC 2046 5.1.1)
// would be more fragile than splitting by offset here. This reader only finds structure; transfer
// decoding is in decode.ts, and readers that want decoded text use mailparser.

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
const SPACE = 0x20;
const TAB = 0x09;
const COLON = 0x3a;

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

/**
 * Where one header field lies in the buffer it was read from: its name ends at `colon`, and its lines (the folded
 * ones too, with the final line break) run from `start` to `end`.
 */
export interface HeaderField {
  start: number;
  colon: number;
  end: number;
}

/**
 * Finds the header fields and where the body starts. Tolerates LF-only line ends (messages stored by Unix tools), a
 * missing blank line (all header, empty body) and an entity that starts with the blank line (no fields). A line
 * that is not a field (no colon after a name) is skipped together with its folded lines.
 */
export function scanHeader(raw: Buffer): { fields: HeaderField[]; bodyStart: number } {
  const fields: HeaderField[] = [];
  let current: HeaderField | null = null;
  let skipping = false;
  // The next colon at or after the line being read: one search serves many colon-less lines, so a header block of
  // junk lines costs one pass, not one scan to the end of the message per line.
  let nextColon = -1;
  let position = 0;
  while (position < raw.length) {
    const newline = raw.indexOf(LF, position);
    const lineEnd = newline === -1 ? raw.length : newline + 1;
    if (newline === position || (newline === position + 1 && raw[position] === CR)) return { fields, bodyStart: lineEnd };
    const first = raw[position];
    if ((first === SPACE || first === TAB) && (current || skipping)) {
      if (current) current.end = lineEnd;
    } else {
      if (nextColon !== -2 && nextColon < position) nextColon = raw.indexOf(COLON, position);
      if (nextColon === -1) nextColon = -2;
      if (nextColon > position && nextColon < lineEnd) {
        current = { start: position, colon: nextColon, end: lineEnd };
        fields.push(current);
        skipping = false;
      } else {
        current = null;
        skipping = true;
      }
    }
    position = lineEnd;
  }
  return { fields, bodyStart: raw.length };
}

/** The field name as written. */
export function fieldName(raw: Buffer, field: HeaderField): string {
  return raw.toString('latin1', field.start, field.colon).trim();
}

/** The value unfolded as RFC 5322 2.2.3 says (line breaks removed, the folding whitespace kept), bytes as latin1: what signatures and MIME parameters are read from. */
export function fieldValue(raw: Buffer, field: HeaderField): string {
  return raw
    .toString('latin1', field.colon + 1, field.end)
    .replace(/\r?\n(?=[ \t])/g, '')
    .replace(/\r?\n$/, '')
    .trim();
}

/**
 * The value as text for people and policy: each line trimmed and joined by one space, UTF-8 read as UTF-8 (encoded
 * words stay encoded). Bytes are read as latin1 first so trimming sees no decoding errors, then re-read.
 */
export function fieldText(raw: Buffer, field: HeaderField): string {
  const text = raw.toString('latin1', field.colon + 1, field.end);
  const lastBreak = text.endsWith('\r\n') ? text.length - 2 : text.endsWith('\n') ? text.length - 1 : text.length;
  const firstBreak = text.indexOf('\n');
  const value =
    firstBreak === -1 || firstBreak >= lastBreak
      ? text.trim()
      : text
          .slice(0, lastBreak)
          .split(/\r?\n/)
          .map((line) => line.trim())
          .join(' ');
  return nonAscii.test(value) ? Buffer.from(value, 'latin1').toString('utf8') : value;
}

const nonAscii = /[^\x00-\x7f]/;

/** The header fields with their raw bytes, and where the body starts. */
export function splitHeaders(raw: Buffer): { headers: MimeHeader[]; bodyStart: number } {
  const { fields, bodyStart } = scanHeader(raw);
  const headers = fields.map((field): MimeHeader => {
    const name = fieldName(raw, field);
    return { name, key: name.toLowerCase(), value: fieldValue(raw, field), raw: raw.subarray(field.start, field.end) };
  });
  return { headers, bodyStart };
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

/** The file name a part was sent under (Content-Disposition filename, else Content-Type name), if any. */
export function fileNameOf(entity: MimeEntity): string | undefined {
  const disposition = parseContentType(headerValue(entity.headers, 'content-disposition'));
  return disposition.params.filename ?? entity.contentType.params.name;
}
