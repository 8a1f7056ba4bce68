// Reads an advisory's identity, title and embargo date from a post's signed content only (never from outer headers).
import { simpleParser } from 'mailparser';
import type { ListConfig } from '../config/types.ts';
import { parseRfc3339 } from '../archive/embargo-date.ts';
import type { RevisionDate } from './store.ts';
import { normalizeAdvisoryId } from './store.ts';

export interface SignedContent {
  /** The Subject from inside the encryption and signature (protected header), when there is one. */
  subject: string | null;
  /** An X-Embargo-Until header from inside the encryption, when there is one. */
  embargoHeader: string | null;
  /** The text the signature covers (the clearsigned text itself when the post is clearsigned). */
  text: string;
}

export interface AdvisoryIdentity {
  advisoryId: string | null;
  title: string;
  date: RevisionDate;
}

const BEGIN_SIGNED = '-----BEGIN PGP SIGNED MESSAGE-----';
const BEGIN_SIGNATURE = '-----BEGIN PGP SIGNATURE-----';

/** The text inside a clearsigned block (RFC 9580 7.1: armor headers, blank line, dash-escaped text), or null. */
export function clearsignedText(text: string): string | null {
  const start = text.indexOf(BEGIN_SIGNED);
  if (start === -1) return null;
  const end = text.indexOf(BEGIN_SIGNATURE, start);
  if (end === -1) return null;
  const lines = text.slice(start, end).split(/\r?\n/);
  const blank = lines.findIndex((line, index) => index > 0 && line.trim() === '');
  if (blank === -1) return null;
  return lines
    .slice(blank + 1)
    .map((line) => (line.startsWith('- ') ? line.slice(2) : line))
    .join('\n');
}

/** The signed text of an opened entity: the clearsigned text if it carries one, else its text parts as decoded text. */
export async function signedTextOf(entity: Buffer): Promise<string> {
  const parsed = await simpleParser(entity, { skipHtmlToText: true, skipImageLinks: true, skipTextLinks: true, skipTextToHtml: true }).catch(() => null);
  const text = parsed?.text ?? '';
  return clearsignedText(text) ?? text;
}

function firstMatch(pattern: RegExp, text: string): string | null {
  const match = pattern.exec(text);
  if (!match) return null;
  return (match[1] ?? match[0]).trim() || null;
}

/** Every distinct embargo date the pattern finds; one is a date, several are ambiguous, unparsable ones are problems. */
function datesInText(list: ListConfig, text: string): RevisionDate {
  if (!list.embargoPattern) return { kind: 'none' };
  const pattern = new RegExp(list.embargoPattern, 'gm');
  const dates = new Map<number, string>();
  const unreadable: string[] = [];
  for (const match of text.matchAll(pattern)) {
    const captured = match[1];
    if (!captured) continue;
    const date = parseRfc3339(captured);
    if (date) dates.set(date.getTime(), captured.trim());
    else unreadable.push(captured.trim());
    if (dates.size + unreadable.length > 20) break;
  }
  if (dates.size > 1) {
    return { kind: 'ambiguous', detail: `the signed text gives ${dates.size} different embargo dates (${[...dates.values()].join(', ')})` };
  }
  if (unreadable.length > 0) {
    return { kind: 'ambiguous', detail: `the signed text gives an embargo date that is not an RFC 3339 time with an offset (${unreadable[0].slice(0, 60)})` };
  }
  const only = [...dates.keys()][0];
  return only === undefined ? { kind: 'none' } : { kind: 'date', at: new Date(only) };
}

/**
 * The advisory id (advisoryPattern over the signed Subject first, then the signed text), a title, and the embargo
 * date (a protected X-Embargo-Until, else embargoPattern over the signed text). Lists without advisoryPattern have
 * no advisories: their posts are never published.
 */
export function identifyAdvisory(list: ListConfig, content: SignedContent): AdvisoryIdentity {
  const title = (content.subject ?? content.text.split(/\r?\n/).find((line) => line.trim() !== '') ?? '').trim().slice(0, 200);
  let advisoryId: string | null = null;
  if (list.advisoryPattern) {
    const pattern = new RegExp(list.advisoryPattern, 'i');
    const found = (content.subject ? firstMatch(pattern, content.subject) : null) ?? firstMatch(pattern, content.text);
    advisoryId = found ? normalizeAdvisoryId(found) : null;
  }
  let date: RevisionDate;
  if (content.embargoHeader !== null) {
    const parsed = parseRfc3339(content.embargoHeader);
    date = parsed
      ? { kind: 'date', at: parsed }
      : { kind: 'ambiguous', detail: 'the protected X-Embargo-Until header is not an RFC 3339 time with an offset' };
  } else {
    date = datesInText(list, content.text);
  }
  return { advisoryId, title, date };
}

/** The Subject a published advisory goes out under: the signed one without the embargo marker. */
export function publicTitle(title: string): string {
  const cleaned = title
    .replace(/\s*[([]\s*EMBARGOED\s*[)\]]/gi, '')
    .replace(/\bEMBARGOED\b\s*[:-]?\s*/gi, '')
    .replace(/\s+/g, ' ')
    .trim();
  return cleaned || title;
}
