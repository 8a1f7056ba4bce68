// Puts messages into the archive: parses them, encrypts private lists' copies, threads them, indexes public text.
import { createHash } from 'node:crypto';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import type { ListConfig } from '../config/types.ts';
import { encryptForArchive, type ListKey } from '../crypto/index.ts';
import type { Db } from '../store/database.ts';
import { counter } from '../util/metrics.ts';
import { findEmbargoEnd } from './embargo-date.ts';
import { messageIdsIn, messageKey, normalizeMessageId } from './message-ids.ts';

const archiveEntries = counter('embargo_archive_entries_total', 'Messages added to the archive', ['visibility']);

/** What a public entry shows on index pages; private entries have none of it in clear. */
export interface ArchiveHeaders {
  messageId: string;
  sentAt: Date | null;
  senderName: string;
  senderAddress: string;
  subject: string;
  attachmentCount: number;
}

export interface PreparedArchiveEntry {
  list: string;
  /** 'none': the list keeps no archive and the post has no embargo, so nothing is stored. */
  visibility: 'public' | 'private' | 'none';
  messageKey: string;
  /** Keys of the ids this message replies to, nearest parent first. */
  referenceKeys: string[];
  receivedAt: Date;
  spoolId: string | null;
  /** Plaintext size in bytes. */
  size: number;
  encrypted: boolean;
  /** The message itself (public) or one OpenPGP message to the list's key (private). */
  stored: Buffer;
  /** Public entries only. */
  headers: ArchiveHeaders | null;
  /** Public entries only: what full-text search indexes. */
  searchText: { subject: string; sender: string; body: string } | null;
  /** The embargo end, when the post carries one. */
  releaseAt: Date | null;
  /** The public list that receives the advisory when the embargo ends. */
  releaseTo: string | null;
}

export interface PrepareInput {
  list: ListConfig;
  listKey: ListKey;
  /** The clean plaintext MIME copy as the list distributes it. */
  message: Buffer;
  receivedAt: Date;
  spoolId: string | null;
  /** undefined: look for X-Embargo-Until or the list's pattern; null: no embargo. */
  embargoUntil?: Date | null;
}

// Search needs words, not whole novels: a cap keeps one huge post from bloating the index.
const maxIndexedBodyChars = 200_000;

/** Parses a message for the archive. Cheap options: link and HTML conversions are done at display time. */
export function parseForArchive(message: Buffer): Promise<ParsedMail> {
  return simpleParser(message, { skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
}

export function firstAddress(value: AddressObject | AddressObject[] | undefined): { name: string; address: string } {
  const first = (Array.isArray(value) ? value[0] : value)?.value[0];
  return { name: first?.name ?? '', address: first?.address ?? '' };
}

/** The headers an index page shows, from a parsed message (a synthetic id when the message has none). */
export function archiveHeaders(parsed: ParsedMail, message: Buffer): ArchiveHeaders {
  const sender = firstAddress(parsed.from);
  const sentAt = parsed.headers.has('date') && parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date : null;
  return {
    messageId: messageIdOf(parsed, message),
    sentAt,
    senderName: sender.name,
    senderAddress: sender.address,
    subject: parsed.subject ?? '',
    attachmentCount: parsed.attachments.length,
  };
}

function messageIdOf(parsed: ParsedMail, message: Buffer): string {
  const fromHeader = parsed.messageId ? normalizeMessageId(parsed.messageId) : '';
  if (fromHeader) return fromHeader;
  // The pipeline normally adds a Message-ID; a content hash keeps a missing one stable and deduplicated.
  return `archive-${createHash('sha256').update(message).digest('hex').slice(0, 32)}@embargo.invalid`;
}

/** Reply targets nearest first: In-Reply-To, then References from the end (the parent is last there). */
export function replyTargets(parsed: ParsedMail): string[] {
  const ordered = [...messageIdsIn(parsed.inReplyTo), ...messageIdsIn(parsed.references).reverse()];
  return [...new Set(ordered)];
}

/**
 * Whether the body must be parsed: a public entry shows and indexes it, and a list's embargo pattern is looked for in
 * it. Otherwise (a private archive) only the header block is parsed, so a 25 MiB post is not decoded into strings.
 */
function needsBody(input: PrepareInput): boolean {
  const { list } = input;
  if (list.archive === 'public') return true;
  return input.embargoUntil === undefined && Boolean(list.embargoPattern) && (list.kind === 'announce' || Boolean(list.publishTo));
}

/** The header block with its blank line (the whole message when there is no body). */
export function headerBlock(message: Buffer): Buffer {
  const crlf = message.indexOf('\r\n\r\n');
  const lf = message.indexOf('\n\n');
  if (crlf === -1 && lf === -1) return message;
  const end = lf === -1 || (crlf !== -1 && crlf < lf) ? crlf + 4 : lf + 2;
  return message.subarray(0, end);
}

export async function prepareArchiveEntry(input: PrepareInput): Promise<PreparedArchiveEntry> {
  const { list, listKey, message, receivedAt, spoolId } = input;
  const parsed = await parseForArchive(needsBody(input) ? message : headerBlock(message));
  const headers = archiveHeaders(parsed, message);
  const embargoHeader = parsed.headers.get('x-embargo-until');
  const releaseAt =
    input.embargoUntil !== undefined
      ? input.embargoUntil
      : findEmbargoEnd(list, typeof embargoHeader === 'string' ? embargoHeader : undefined, parsed.text ?? '');
  const releaseTo = releaseAt ? (list.publishTo ?? (list.archive === 'public' ? list.name : null)) : null;
  const base = {
    list: list.name,
    // An advisory released into its own public list needs its public row to be a separate entry.
    messageKey: messageKey(list.name, releaseTo === list.name ? `embargoed\n${headers.messageId}` : headers.messageId),
    referenceKeys: replyTargets(parsed).map((id) => messageKey(list.name, id)),
    receivedAt,
    spoolId,
    size: message.length,
    releaseAt,
    releaseTo,
  };
  // An embargoed post is kept encrypted even on a public list: before its time it must appear nowhere public.
  if (list.archive === 'public' && !releaseAt) {
    return {
      ...base,
      visibility: 'public',
      encrypted: false,
      stored: message,
      headers,
      searchText: {
        subject: headers.subject,
        sender: `${headers.senderName} ${headers.senderAddress}`.trim(),
        body: (parsed.text ?? '').slice(0, maxIndexedBodyChars),
      },
    };
  }
  if (list.archive === 'none' && !releaseAt) {
    return { ...base, visibility: 'none', encrypted: false, stored: Buffer.alloc(0), headers: null, searchText: null };
  }
  const encrypted = await encryptForArchive(listKey, message);
  return { ...base, visibility: 'private', encrypted: true, stored: encrypted, headers: null, searchText: null };
}

function monthOf(date: Date): string {
  return date.toISOString().slice(0, 7);
}

function prepareStatements(db: Db) {
  return {
    existing: db.prepare('SELECT id FROM archive_entries WHERE list = ? AND message_key = ?'),
    insert: db.prepare(
      `INSERT INTO archive_entries (list, visibility, message_key, thread_id, received_at, month, size, spool_id,
         encrypted, message, message_id, sent_at, sender_name, sender_address, subject, attachment_count,
         release_at, release_to)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    findThread: db.prepare('SELECT thread_id FROM archive_entries WHERE list = ? AND message_key = ?'),
    setThread: db.prepare('UPDATE archive_entries SET thread_id = ? WHERE id = ?'),
    addReference: db.prepare('INSERT OR IGNORE INTO archive_references (entry_id, ref_key) VALUES (?, ?)'),
    // CROSS JOIN fixes the order: look up the few references first, never scan the list's rows.
    orphanThreads: db.prepare(
      `SELECT child.thread_id FROM archive_references AS reference
       CROSS JOIN archive_entries AS child ON child.id = reference.entry_id
       WHERE reference.ref_key = ? AND child.list = ? AND child.thread_id = child.id AND child.id <> ?`,
    ),
    adopt: db.prepare('UPDATE archive_entries SET thread_id = ? WHERE thread_id = ?'),
    index: db.prepare('INSERT INTO archive_search (rowid, subject, sender, body) VALUES (?, ?, ?, ?)'),
  };
}

// Preparing statements costs more than running them; one set per database handle.
const statementCache = new WeakMap<Db, ReturnType<typeof prepareStatements>>();

function statementsFor(db: Db): ReturnType<typeof prepareStatements> {
  let statements = statementCache.get(db);
  if (!statements) {
    statements = prepareStatements(db);
    statementCache.set(db, statements);
  }
  return statements;
}

/**
 * Stores a prepared entry and returns its row id (0 when the list keeps no archive). Synchronous so the
 * pipeline can call it inside its own transaction; idempotent by Message-ID, because a message may be
 * processed twice after a crash and must be archived once.
 */
export function insertArchiveEntry(db: Db, entry: PreparedArchiveEntry): number {
  if (entry.visibility === 'none') return 0;
  const statements = statementsFor(db);
  let created = false;
  const insert = db.transaction((): number => {
    const existing = statements.existing.get(entry.list, entry.messageKey) as { id: number } | undefined;
    if (existing) return existing.id;

    let parentThread: number | null = null;
    for (const key of entry.referenceKeys) {
      const parent = statements.findThread.get(entry.list, key) as { thread_id: number } | undefined;
      if (parent) {
        parentThread = parent.thread_id;
        break;
      }
    }
    const headers = entry.headers;
    const result = statements.insert.run(
      entry.list,
      entry.visibility,
      entry.messageKey,
      parentThread ?? 0,
      entry.receivedAt.getTime(),
      monthOf(entry.receivedAt),
      entry.size,
      entry.spoolId,
      entry.encrypted ? 1 : 0,
      entry.stored,
      headers?.messageId ?? null,
      headers?.sentAt?.getTime() ?? null,
      headers?.senderName ?? null,
      headers?.senderAddress ?? null,
      headers?.subject ?? null,
      headers?.attachmentCount ?? 0,
      entry.releaseAt?.getTime() ?? null,
      entry.releaseTo,
    );
    const id = Number(result.lastInsertRowid);
    created = true;
    // A message without an archived parent starts its own thread, named by its own row id.
    const threadId = parentThread ?? id;
    if (parentThread === null) statements.setThread.run(id, id);
    for (const key of entry.referenceKeys) statements.addReference.run(id, key);
    // Replies that arrived before this message started threads of their own; they join this one now.
    const orphans = statements.orphanThreads.all(entry.messageKey, entry.list, id) as Array<{ thread_id: number }>;
    for (const orphan of orphans) statements.adopt.run(threadId, orphan.thread_id);

    if (entry.searchText) {
      statements.index.run(id, entry.searchText.subject, entry.searchText.sender, entry.searchText.body);
    }
    return id;
  });
  const id = insert();
  if (created) archiveEntries.inc({ visibility: entry.visibility });
  return id;
}

/**
 * Indexes public entries that are missing from the search index (those archived before the index kept its text),
 * a batch per transaction; returns how many it indexed. Cheap when there is nothing to do: one indexed lookup per
 * public row.
 */
export async function indexUnsearchedPublicEntries(db: Db, batchSize = 200): Promise<number> {
  const missing = db.prepare(
    `SELECT e.id FROM archive_entries AS e
     WHERE e.visibility = 'public' AND e.id > ? AND NOT EXISTS (SELECT 1 FROM archive_search AS s WHERE s.rowid = e.id)
     ORDER BY e.id LIMIT ?`,
  );
  const read = db.prepare("SELECT message, subject, sender_name, sender_address FROM archive_entries WHERE id = ? AND visibility = 'public'");
  const present = db.prepare('SELECT 1 FROM archive_search WHERE rowid = ?');
  const index = statementsFor(db).index;
  let indexed = 0;
  let after = 0;
  for (;;) {
    const ids = (missing.all(after, batchSize) as Array<{ id: number }>).map((row) => row.id);
    if (ids.length === 0) return indexed;
    after = ids.at(-1)!;
    const texts: Array<[number, string, string, string]> = [];
    for (const id of ids) {
      const row = read.get(id) as { message: Buffer; subject: string | null; sender_name: string | null; sender_address: string | null } | undefined;
      if (!row) continue;
      const parsed = await parseForArchive(row.message);
      texts.push([id, row.subject ?? '', `${row.sender_name ?? ''} ${row.sender_address ?? ''}`.trim(), (parsed.text ?? '').slice(0, maxIndexedBodyChars)]);
    }
    db.transaction(() => {
      for (const [id, subject, sender, body] of texts) {
        if (!present.get(id)) index.run(id, subject, sender, body);
      }
    })();
    indexed += texts.length;
  }
}
