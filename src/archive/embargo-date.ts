// Finds when an advisory's embargo ends: an X-Embargo-Until header, or the list's configured pattern in the text.
import type { ListConfig } from '../config/types.ts';

const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 time with an explicit offset (a bare local time would be ambiguous), or null. */
export function parseRfc3339(text: string): Date | null {
  const value = text.trim();
  if (!rfc3339.test(value)) return null;
  const date = new Date(value.replace(' ', 'T'));
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * The embargo end of a post, or null when it has none. Only announce lists carry embargoes; the header wins
 * over the pattern because the poster set it deliberately.
 */
export function findEmbargoEnd(list: ListConfig, header: string | undefined, text: string): Date | null {
  if (list.kind !== 'announce' && !list.publishTo) return null;
  if (header !== undefined) {
    const fromHeader = parseRfc3339(header);
    if (fromHeader) return fromHeader;
  }
  if (list.embargoPattern) {
    const match = new RegExp(list.embargoPattern, 'm').exec(text);
    const captured = match?.[1];
    if (captured) return parseRfc3339(captured);
  }
  return null;
}
