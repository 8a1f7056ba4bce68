// Message-ID normalisation and the opaque per-list lookup keys that stand in for Message-IDs in the database.
import { createHash } from 'node:crypto';

/** `<abc@host>` or ` abc@host ` → `abc@host`; empty when nothing usable is left. */
export function normalizeMessageId(value: string): string {
  const trimmed = value.trim();
  const bracketed = /<([^<>\s]+)>/.exec(trimmed);
  if (bracketed) return bracketed[1]!;
  return /^[^<>\s]+$/.test(trimmed) ? trimmed : '';
}

/** Every id in a References/In-Reply-To value, in header order. */
export function messageIdsIn(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(' ') : value;
  const found = [...text.matchAll(/<([^<>\s]+)>/g)].map((match) => match[1]!);
  if (found.length > 0) return found;
  return text.split(/\s+/).map(normalizeMessageId).filter((id) => id.length > 0);
}

/**
 * The lookup key of a Message-ID within a list. A hash, so a private list's database does not show
 * Message-IDs (they often carry host names and product names); the list name scopes it so equal ids on
 * two lists stay two entries.
 */
export function messageKey(listName: string, messageId: string): string {
  return createHash('sha256').update(`embargo-archive\n${listName}\n${messageId}`).digest('hex');
}
