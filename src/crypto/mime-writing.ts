// Writing the MIME around Embargo's OpenPGP parts: header lines (RFC 2047 where a value is not ASCII), boundaries that cannot clash, CRLF line ends.
import libmime from 'libmime';
import { randomBytes } from 'node:crypto';

export function newBoundary(prefix: string): string {
  return `${prefix}-${randomBytes(18).toString('base64url')}`;
}

/** A boundary that cannot occur in `content` (checked, although 144 random bits make a clash implausible). */
export function boundaryFor(prefix: string, content: Buffer): string {
  for (;;) {
    const boundary = newBoundary(prefix);
    if (!content.includes(`--${boundary}`)) return boundary;
  }
}

const ASCII = /^[\x20-\x7e\t]*$/;
const ADDRESS_HEADERS = new Set(['from', 'to', 'cc', 'reply-to', 'sender']);

/** RFC 2047 B-encoded words of whole characters, at most 36 UTF-8 octets (60 characters) each, folded onto continuation lines. */
function encodeWords(text: string): string {
  return libmime.encodeWord(text, 'B', 60).replace(/\?= =\?/g, '?=\r\n =?');
}

/**
 * Header values are emitted as given when they are plain ASCII (callers pass raw, already encoded values);
 * otherwise display names (in address headers) or the whole value become RFC 2047 encoded words.
 */
export function headerLine(name: string, value: string): string {
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

/**
 * The lines of `headers` without Content-* and MIME-Version, which the entity being written sets itself; with the
 * Subject only when `keepSubject` (the outer headers of an encrypted copy get a generic one instead).
 */
export function headerLines(headers: Array<[string, string]>, keepSubject: boolean): string {
  return headers
    .filter(([name]) => !isContentOrSubject(name) || (keepSubject && name.toLowerCase() === 'subject'))
    .map(([name, value]) => headerLine(name, value))
    .join('');
}

export function crlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}
