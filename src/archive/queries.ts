// Reads the archive back: public indexes by month and thread, search, single messages, and decrypted private copies.
import type { ListConfig } from '../config/types.ts';
import { decryptFromArchive, type ListKey } from '../crypto/index.ts';
import type { Db } from '../store/database.ts';
import { messageKey, normalizeMessageId } from './message-ids.ts';
import { archiveHeaders, parseForArchive } from './store.ts';

export interface ArchiveSummary {
  id: number;
  list: string;
  messageId: string;
  threadId: number;
  subject: string;
  senderName: string;
  senderAddress: string;
  sentAt: Date | null;
  receivedAt: Date;
  size: number;
  attachmentCount: number;
}

interface SummaryRow {
  id: number;
  list: string;
  message_id: string;
  thread_id: number;
  subject: string;
  sender_name: string;
  sender_address: string;
  sent_at: number | null;
  received_at: number;
  size: number;
  attachment_count: number;
}

const summaryColumns =
  'e.id, e.list, e.message_id, e.thread_id, e.subject, e.sender_name, e.sender_address, e.sent_at, e.received_at, e.size, e.attachment_count';

function toSummary(row: SummaryRow): ArchiveSummary {
  return {
    id: row.id,
    list: row.list,
    messageId: row.message_id,
    threadId: row.thread_id,
    subject: row.subject,
    senderName: row.sender_name,
    senderAddress: row.sender_address,
    sentAt: row.sent_at === null ? null : new Date(row.sent_at),
    receivedAt: new Date(row.received_at),
    size: row.size,
    attachmentCount: row.attachment_count,
  };
}

/** Months that have public messages, newest first. */
export function publicMonths(db: Db, list: string): Array<{ month: string; count: number }> {
  return db
    .prepare(
      `SELECT month, count(*) AS count FROM archive_entries
       WHERE list = ? AND visibility = 'public' GROUP BY month ORDER BY month DESC`,
    )
    .all(list) as Array<{ month: string; count: number }>;
}

export function publicCount(db: Db, list: string): number {
  return (
    db.prepare("SELECT count(*) AS count FROM archive_entries WHERE list = ? AND visibility = 'public'").get(list) as {
      count: number;
    }
  ).count;
}

export function publicMessagesInMonth(db: Db, list: string, month: string): ArchiveSummary[] {
  return (
    db
      .prepare(
        `SELECT ${summaryColumns} FROM archive_entries AS e
         WHERE e.list = ? AND e.month = ? AND e.visibility = 'public' ORDER BY e.received_at, e.id`,
      )
      .all(list, month) as SummaryRow[]
  ).map(toSummary);
}

export function recentPublicMessages(db: Db, list: string, limit: number): ArchiveSummary[] {
  return (
    db
      .prepare(
        `SELECT ${summaryColumns} FROM archive_entries AS e
         WHERE e.list = ? AND e.visibility = 'public' ORDER BY e.received_at DESC, e.id DESC LIMIT ?`,
      )
      .all(list, limit) as SummaryRow[]
  ).map(toSummary);
}

export function publicSummary(db: Db, list: string, messageId: string): ArchiveSummary | null {
  const row = db
    .prepare(
      `SELECT ${summaryColumns} FROM archive_entries AS e
       WHERE e.list = ? AND e.message_key = ? AND e.visibility = 'public'`,
    )
    .get(list, messageKey(list, normalizeMessageId(messageId))) as SummaryRow | undefined;
  return row ? toSummary(row) : null;
}

/** A public message's bytes, as archived. */
export function publicMessage(db: Db, list: string, messageId: string): { summary: ArchiveSummary; message: Buffer } | null {
  const summary = publicSummary(db, list, messageId);
  if (!summary) return null;
  const row = db.prepare('SELECT message FROM archive_entries WHERE id = ?').get(summary.id) as { message: Buffer };
  return { summary, message: row.message };
}

export function publicMessagesByIds(db: Db, ids: number[]): Buffer[] {
  const read = db.prepare("SELECT message FROM archive_entries WHERE id = ? AND visibility = 'public'");
  return ids.map((id) => (read.get(id) as { message: Buffer } | undefined)?.message).filter((m): m is Buffer => !!m);
}

/** Every public message of the thread that contains messageId, oldest first. */
export function publicThread(db: Db, list: string, messageId: string): ArchiveSummary[] {
  const member = publicSummary(db, list, messageId);
  if (!member) return [];
  return (
    db
      .prepare(
        `SELECT ${summaryColumns} FROM archive_entries AS e
         WHERE e.thread_id = ? AND e.list = ? AND e.visibility = 'public' ORDER BY e.received_at, e.id`,
      )
      .all(member.threadId, list) as SummaryRow[]
  ).map(toSummary);
}

/** Turns what a visitor typed into an FTS5 query of quoted words, so no FTS syntax from outside is interpreted. */
export function searchQuery(text: string): string | null {
  const words = text
    .normalize('NFKC')
    .split(/[^\p{L}\p{N}_]+/u)
    .filter((word) => word.length > 0)
    .slice(0, 12);
  if (words.length === 0) return null;
  return words.map((word) => `"${word.replaceAll('"', '""')}"`).join(' ');
}

/** Public messages matching every word, newest first. */
export function searchPublic(db: Db, list: string, text: string, limit = 50, offset = 0): ArchiveSummary[] {
  const query = searchQuery(text);
  if (!query) return [];
  return (
    db
      .prepare(
        `SELECT ${summaryColumns} FROM archive_search AS s JOIN archive_entries AS e ON e.id = s.rowid
         WHERE archive_search MATCH ? AND e.list = ? AND e.visibility = 'public'
         ORDER BY s.rowid DESC LIMIT ? OFFSET ?`,
      )
      .all(query, list, limit, offset) as SummaryRow[]
  ).map(toSummary);
}

// Marks around matched words in snippets: control characters no mail text keeps, so the page can escape the text first.
export const snippetStart = '\u0002';
export const snippetEnd = '\u0003';

export interface SearchHit {
  summary: ArchiveSummary;
  /** Up to 24 words of the body around the matches, matches between snippetStart and snippetEnd; raw text. */
  snippet: string;
}

/**
 * Counting stops here: a common word matches most of a big archive, and counting every match would cost more than
 * the page itself. Beyond it the page says "more than".
 */
export const searchCountLimit = 1000;

/**
 * One page of public messages matching every word (newest first), with the number of all matches (at most
 * searchCountLimit; `more` when there are more).
 */
export function searchPublicPage(
  db: Db,
  list: string,
  text: string,
  limit: number,
  offset: number,
  countLimit = searchCountLimit,
): { total: number; more: boolean; hits: SearchHit[] } {
  const query = searchQuery(text);
  if (!query) return { total: 0, more: false, hits: [] };
  const { counted } = db
    .prepare(
      `SELECT count(*) AS counted FROM (
         SELECT 1 FROM archive_search AS s JOIN archive_entries AS e ON e.id = s.rowid
         WHERE archive_search MATCH ? AND e.list = ? AND e.visibility = 'public' LIMIT ?)`,
    )
    .get(query, list, countLimit + 1) as { counted: number };
  const total = Math.min(counted, countLimit);
  const more = counted > countLimit;
  if (total === 0 || offset >= total) return { total, more, hits: [] };
  // The body's snippet: the subject is on the result line already. A match only in the subject or sender gives
  // the body's first words, without marks.
  const rows = db
    .prepare(
      `SELECT ${summaryColumns}, snippet(archive_search, 2, ?, ?, '…', 24) AS snippet
       FROM archive_search AS s JOIN archive_entries AS e ON e.id = s.rowid
       WHERE archive_search MATCH ? AND e.list = ? AND e.visibility = 'public'
       ORDER BY s.rowid DESC LIMIT ? OFFSET ?`,
    )
    .all(snippetStart, snippetEnd, query, list, limit, offset) as Array<SummaryRow & { snippet: string | null }>;
  return { total, more, hits: rows.map((row) => ({ summary: toSummary(row), snippet: row.snippet ?? '' })) };
}

/** The public messages of a list just before and just after one, by arrival. */
export function publicNeighbours(db: Db, summary: ArchiveSummary): { previous: ArchiveSummary | null; next: ArchiveSummary | null } {
  const at = summary.receivedAt.getTime();
  const previous = db
    .prepare(
      `SELECT ${summaryColumns} FROM archive_entries AS e
       WHERE e.list = ? AND e.visibility = 'public' AND (e.received_at < ? OR (e.received_at = ? AND e.id < ?))
       ORDER BY e.received_at DESC, e.id DESC LIMIT 1`,
    )
    .get(summary.list, at, at, summary.id) as SummaryRow | undefined;
  const next = db
    .prepare(
      `SELECT ${summaryColumns} FROM archive_entries AS e
       WHERE e.list = ? AND e.visibility = 'public' AND (e.received_at > ? OR (e.received_at = ? AND e.id > ?))
       ORDER BY e.received_at, e.id LIMIT 1`,
    )
    .get(summary.list, at, at, summary.id) as SummaryRow | undefined;
  return { previous: previous ? toSummary(previous) : null, next: next ? toSummary(next) : null };
}

/**
 * One archived message of a list, decrypted when it is stored encrypted (for a member's `get` request or an
 * admin's export); null when the list has no message with that id.
 */
export async function findArchived(db: Db, list: ListConfig, messageId: string, listKey: ListKey): Promise<Buffer | null> {
  const row = db
    .prepare('SELECT encrypted, message FROM archive_entries WHERE list = ? AND message_key = ?')
    .get(list.name, messageKey(list.name, normalizeMessageId(messageId))) as
    | { encrypted: number; message: Buffer }
    | undefined;
  if (!row) return null;
  return row.encrypted ? decryptFromArchive(listKey, row.message) : row.message;
}

/** An archived message by the spool id it came in under (the Message-ID on the wire of an encrypted list names it). */
export async function findArchivedBySpoolId(db: Db, list: ListConfig, spoolId: string, listKey: ListKey): Promise<Buffer | null> {
  const row = db.prepare('SELECT encrypted, message FROM archive_entries WHERE list = ? AND spool_id = ?').get(list.name, spoolId.toUpperCase()) as
    | { encrypted: number; message: Buffer }
    | undefined;
  if (!row) return null;
  return row.encrypted ? decryptFromArchive(listKey, row.message) : row.message;
}

/** One line of a list's index for a member: enough to pick a message and `get` it, read from the (decrypted) entry. */
export interface IndexEntry {
  receivedAt: Date;
  messageId: string;
  subject: string;
  senderAddress: string;
}

/** The index of a list's archive since `since`, oldest first; private entries are decrypted to read their headers. */
export async function archiveIndex(db: Db, list: ListConfig, listKey: ListKey, since: Date | null): Promise<IndexEntry[]> {
  const entries: IndexEntry[] = [];
  for await (const { receivedAt, message } of archivedMessages(db, list, listKey, since)) {
    const headers = archiveHeaders(await parseForArchive(message), message);
    entries.push({ receivedAt, messageId: headers.messageId, subject: headers.subject, senderAddress: headers.senderAddress });
  }
  return entries;
}

/** Every message of a list received at or after `since`, oldest first, decrypted; for `embargo archive export`. */
export async function* archivedMessages(
  db: Db,
  list: ListConfig,
  listKey: ListKey,
  since: Date | null = null,
): AsyncGenerator<{ receivedAt: Date; message: Buffer }> {
  const rows = db
    .prepare(
      `SELECT id, received_at, encrypted FROM archive_entries WHERE list = ? AND received_at >= ?
       ORDER BY received_at, id`,
    )
    .all(list.name, since?.getTime() ?? 0) as Array<{ id: number; received_at: number; encrypted: number }>;
  const read = db.prepare('SELECT message FROM archive_entries WHERE id = ?');
  for (const row of rows) {
    const stored = (read.get(row.id) as { message: Buffer }).message;
    const message = row.encrypted ? await decryptFromArchive(listKey, stored) : stored;
    yield { receivedAt: new Date(row.received_at), message };
  }
}
