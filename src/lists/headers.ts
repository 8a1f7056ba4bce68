// Reads and writes RFC 5322 header blocks: split head from body, unfold, look up fields, parse addresses.
import addressparser from 'nodemailer/lib/addressparser';
import libmime from 'libmime';

export type HeaderList = Array<[string, string]>;

export interface SplitMessage {
  /** Unfolded header fields in order, names as written, values trimmed. */
  headers: HeaderList;
  /** Everything after the blank line. */
  body: Buffer;
}

/** Splits a raw message (or MIME entity) into its unfolded header fields and its body. */
export function splitMessage(raw: Buffer): SplitMessage {
  let end = -1;
  let bodyStart = raw.length;
  // An entity may have no header fields at all (a plain RFC 5322 body turned into a MIME part): it starts with the blank line.
  if (raw[0] === 0x0a || (raw[0] === 0x0d && raw[1] === 0x0a)) {
    return { headers: [], body: raw.subarray(raw[0] === 0x0a ? 1 : 2) };
  }
  for (let index = 0; index < raw.length; index++) {
    if (raw[index] !== 0x0a) continue;
    if (raw[index + 1] === 0x0a) {
      end = index;
      bodyStart = index + 2;
      break;
    }
    if (raw[index + 1] === 0x0d && raw[index + 2] === 0x0a) {
      end = index;
      bodyStart = index + 3;
      break;
    }
  }
  const head = raw.subarray(0, end < 0 ? raw.length : end).toString('latin1');
  const headers: HeaderList = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && headers.length > 0) {
      const last = headers[headers.length - 1];
      last[1] = `${last[1]} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  // Header bytes were read as latin1 so nothing is lost; values that were UTF-8 are re-read as UTF-8.
  for (const field of headers) field[1] = Buffer.from(field[1], 'latin1').toString('utf8');
  return { headers, body: raw.subarray(bodyStart) };
}

export function headerValue(headers: HeaderList, name: string): string | undefined {
  const wanted = name.toLowerCase();
  return headers.find(([key]) => key.toLowerCase() === wanted)?.[1];
}

export function headerValues(headers: HeaderList, name: string): string[] {
  const wanted = name.toLowerCase();
  return headers.filter(([key]) => key.toLowerCase() === wanted).map(([, value]) => value);
}

export interface Mailbox {
  name: string;
  address: string;
}

/** The first mailbox of an address header, lower-cased address and decoded display name. */
export function firstMailbox(value: string | undefined): Mailbox | null {
  if (!value) return null;
  for (const entry of addressparser(value, { flatten: true })) {
    if (entry.address && entry.address.includes('@')) {
      return { name: decodeWords(entry.name ?? ''), address: entry.address.toLowerCase() };
    }
  }
  return null;
}

export function decodeWords(value: string): string {
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

/** Encodes a header value for the wire when it is not plain ASCII. */
export function encodeWords(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : libmime.encodeWords(value, 'Q', 52);
}

/** A display name usable inside a quoted string. */
export function quoteDisplayName(name: string): string {
  const cleaned = name.replace(/[\r\n"\\]/g, '').trim();
  if (/^[\x20-\x7e]*$/.test(cleaned)) return `"${cleaned}"`;
  return libmime.encodeWords(cleaned, 'Q', 52);
}

/** The bare Message-ID (without angle brackets), or null. */
export function messageIdOf(value: string | undefined): string | null {
  if (!value) return null;
  const match = /<([^<>\s]+)>/.exec(value);
  const bare = value.trim();
  const id = match ? match[1] : /^[^<>\s]+@[^<>\s]+$/.test(bare) ? bare : null;
  // Real ids are well under 100 characters; a huge one would be copied into every copy, bounce and archive entry.
  return id && id.length <= maxMessageIdLength ? id : null;
}

const maxMessageIdLength = 250;

/** Serialises header fields with CRLF, folding long values at spaces. */
export function formatHeaders(headers: HeaderList): string {
  return headers.map(([name, value]) => fold(`${name}: ${value.replace(/[\r\n]+/g, ' ')}`)).join('\r\n') + '\r\n';
}

function fold(line: string): string {
  if (line.length <= 78) return line;
  const parts: string[] = [];
  let rest = line;
  while (rest.length > 78) {
    const cut = rest.lastIndexOf(' ', 78);
    if (cut <= 0) break;
    parts.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  parts.push(rest);
  return parts.join('\r\n');
}
