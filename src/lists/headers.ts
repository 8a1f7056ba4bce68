// Reads and writes RFC 5322 header blocks: split head from body, unfold, look up fields, parse addresses.
import addressparser from 'nodemailer/lib/addressparser';
import libmime from 'libmime';
import { fieldName, fieldText, scanHeader } from '../mime/read.ts';

export type HeaderList = Array<[string, string]>;

export interface SplitMessage {
  /** Header fields in order, names as written, values as fieldText gives them (unfolded, trimmed, UTF-8). */
  headers: HeaderList;
  /** Everything after the blank line. */
  body: Buffer;
}

/** A raw message (or MIME entity) as text fields for the list engine, read by the one MIME reader. */
export function splitMessage(raw: Buffer): SplitMessage {
  const { fields, bodyStart } = scanHeader(raw);
  return { headers: fields.map((field) => [fieldName(raw, field), fieldText(raw, field)]), body: raw.subarray(bodyStart) };
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
  // A header of thousands of addresses (junk does that) need not be parsed whole for its first one: when a prefix
  // already holds a second entry, the first is complete and cannot change. Else the whole value is parsed.
  if (value.length > firstMailboxPrefix) {
    const entries = addressparser(value.slice(0, firstMailboxPrefix), { flatten: true });
    if (entries.length >= 2) return mailboxAmong(entries.slice(0, entries.length - 1)) ?? mailboxAmong(addressparser(value, { flatten: true }));
  }
  return mailboxAmong(addressparser(value, { flatten: true }));
}

const firstMailboxPrefix = 2048;

function mailboxAmong(entries: ReturnType<typeof addressparser>): Mailbox | null {
  for (const entry of entries) {
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
