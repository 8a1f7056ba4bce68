// The outbound queue's rows: enqueue a fan-out, claim due rows, record each attempt's outcome, and the admin views and actions.
import type { Db } from '../store/database.ts';
import { statement } from '../store/statements.ts';
import { isSuspended } from './bounce-scores.ts';

const enqueueListeners = new Set<() => void>();

/**
 * Called after every enqueue (the delivery component wakes up on it, so the pipeline need not hold a handle on it).
 * Listeners run from setImmediate: by then the caller's transaction, which better-sqlite3 runs synchronously, has committed.
 * Returns a function that removes the listener.
 */
export function onOutboundEnqueued(listener: () => void): () => void {
  enqueueListeners.add(listener);
  return () => enqueueListeners.delete(listener);
}

const expectListeners = new Set<() => void>();

/**
 * Called when copies are likely to be queued soon: the pipeline took up a registered poster's mail (delivery gets its
 * relay connections ready meanwhile). A hint only: nothing may depend on copies following. Returns a remover.
 */
export function onOutboundExpected(listener: () => void): () => void {
  expectListeners.add(listener);
  return () => expectListeners.delete(listener);
}

export function expectOutbound(): void {
  for (const listener of expectListeners) listener();
}

/** A queue row's new state, as the delivery loop records it. */
export interface OutboundStateChange {
  id: number;
  state: OutboundState;
  reply: string;
  at: number;
}

const stateListeners = new Set<(db: Db, changes: readonly OutboundStateChange[]) => void>();

/**
 * Called inside the transaction that records delivery outcomes, so a listener's own writes (the advisories' audit
 * trail) commit with the queue's, or not at all. Returns a function that removes the listener.
 */
export function onOutboundStateChange(listener: (db: Db, changes: readonly OutboundStateChange[]) => void): () => void {
  stateListeners.add(listener);
  return () => stateListeners.delete(listener);
}

function notifyStateChange(db: Db, changes: readonly OutboundStateChange[]): void {
  if (changes.length === 0) return;
  for (const listener of stateListeners) listener(db, changes);
}

export type OutboundState = 'queued' | 'sending' | 'sent' | 'deferred' | 'failed' | 'expired' | 'suspended';

export const outboundStates: readonly OutboundState[] = ['queued', 'sending', 'deferred', 'sent', 'failed', 'expired', 'suspended'];

/** Why a copy to a member whose delivery is suspended after bounces was not sent (the row's last reply). */
export const suspendedReply = 'not sent: delivery to this member is suspended after bounces';

export interface OutgoingCopy {
  recipient: string;
  /** Bytes before the shared payload (headers, the recipient's session-key packet). */
  head: Buffer;
  tail?: Buffer;
  messageId?: string;
}

export interface OutgoingBatch {
  spoolId: string | null;
  list: string;
  /** Shared by every copy, stored once; null when each head is the whole message. */
  payload: Buffer | null;
  copies: OutgoingCopy[];
}

/** A queue row without its content, for views and the delivery loop. */
export interface OutboundRow {
  id: number;
  spoolId: string | null;
  list: string;
  recipient: string;
  payloadId: number | null;
  messageId: string | null;
  state: OutboundState;
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
  updatedAt: number;
  lastAttemptAt: number | null;
  retriedAt: number | null;
  lastReply: string | null;
}

interface RowRecord {
  id: number;
  spool_id: string | null;
  list: string;
  recipient: string;
  payload_id: number | null;
  message_id: string | null;
  state: OutboundState;
  attempts: number;
  next_attempt_at: number;
  created_at: number;
  updated_at: number;
  last_attempt_at: number | null;
  retried_at: number | null;
  last_reply: string | null;
}

const rowColumns =
  'id, spool_id, list, recipient, payload_id, message_id, state, attempts, next_attempt_at, created_at, updated_at, last_attempt_at, retried_at, last_reply';

function toRow(record: RowRecord): OutboundRow {
  return {
    id: record.id,
    spoolId: record.spool_id,
    list: record.list,
    recipient: record.recipient,
    payloadId: record.payload_id,
    messageId: record.message_id,
    state: record.state,
    attempts: record.attempts,
    nextAttemptAt: record.next_attempt_at,
    createdAt: record.created_at,
    updatedAt: record.updated_at,
    lastAttemptAt: record.last_attempt_at,
    retriedAt: record.retried_at,
    lastReply: record.last_reply,
  };
}

/** Relay replies can be long multi-line texts; the row keeps enough to explain the outcome. */
const maxReplyLength = 2000;

function clipReply(reply: string): string {
  return reply.length > maxReplyLength ? `${reply.slice(0, maxReplyLength)}…` : reply;
}

/**
 * Inserts one payload row (when there is a shared payload) and one queue row per copy; returns the row ids in copy order.
 * Synchronous, so the list pipeline can run it in the same transaction that marks the inbound message processed
 * (inside an outer transaction, this one is a savepoint). Copies to a member whose delivery is suspended after
 * bounces are stored as 'suspended', visible to admins, instead of being sent or silently dropped.
 */
export function enqueueOutgoing(db: Db, batch: OutgoingBatch, now: number = Date.now()): number[] {
  const insertPayload = statement(db, 'INSERT INTO outbound_payload (created_at, body) VALUES (?, ?)');
  const insertRow = statement(
    db,
    `INSERT INTO outbound (spool_id, list, recipient, payload_id, head, tail, message_id, state, next_attempt_at, created_at, updated_at, last_reply)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  return db.transaction((): number[] => {
    const payloadId = batch.payload ? Number(insertPayload.run(now, batch.payload).lastInsertRowid) : null;
    const ids: number[] = [];
    for (const copy of batch.copies) {
      const suspended = isSuspended(db, batch.list, copy.recipient);
      const result = insertRow.run(
        batch.spoolId,
        batch.list,
        copy.recipient,
        payloadId,
        copy.head,
        copy.tail ?? Buffer.alloc(0),
        copy.messageId ?? null,
        suspended ? 'suspended' : 'queued',
        now,
        now,
        now,
        suspended ? suspendedReply : null,
      );
      ids.push(Number(result.lastInsertRowid));
    }
    if (enqueueListeners.size > 0) {
      setImmediate(() => {
        for (const listener of enqueueListeners) listener();
      });
    }
    return ids;
  })();
}

/** Moves up to `limit` due rows to 'sending' and returns them, oldest due first. */
export function claimDueRows(db: Db, limit: number, now: number): OutboundRow[] {
  if (limit <= 0) return [];
  // One range of the outbound_due index (state, next_attempt_at, id) per state, each read in index order and cut at
  // `limit`: a long backlog costs nothing here. (One query over both states sorted the whole due backlog per claim.)
  const select = statement(
    db,
    `SELECT ${rowColumns} FROM outbound WHERE state = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`,
  );
  const claim = statement(
    db,
    `UPDATE outbound SET state = 'sending', attempts = attempts + 1, last_attempt_at = ?, updated_at = ?
     WHERE id = ? AND state IN ('queued', 'deferred')`,
  );
  return db.transaction((): OutboundRow[] => {
    const due = [...(select.all('queued', now, limit) as RowRecord[]), ...(select.all('deferred', now, limit) as RowRecord[])];
    due.sort((a, b) => a.next_attempt_at - b.next_attempt_at || a.id - b.id);
    const rows = due.slice(0, limit).map(toRow);
    const claimed: OutboundRow[] = [];
    for (const row of rows) {
      if (claim.run(now, now, row.id).changes === 1) {
        claimed.push({ ...row, state: 'sending', attempts: row.attempts + 1, lastAttemptAt: now, updatedAt: now });
      }
    }
    return claimed;
  }).immediate();
}

/** When the earliest queued or deferred row is due, or null when nothing waits. */
export function nextDueAt(db: Db): number | null {
  const row = statement(db, `SELECT min(next_attempt_at) AS due FROM outbound WHERE state IN ('queued', 'deferred')`).get() as {
    due: number | null;
  };
  return row.due;
}

export function loadCopyParts(db: Db, id: number): { head: Buffer; tail: Buffer; payloadId: number | null } | null {
  const row = statement(db, 'SELECT head, tail, payload_id FROM outbound WHERE id = ?').get(id) as
    | { head: Buffer; tail: Buffer; payload_id: number | null }
    | undefined;
  return row ? { head: row.head, tail: row.tail, payloadId: row.payload_id } : null;
}

export function loadPayload(db: Db, payloadId: number): Buffer | null {
  const row = statement(db, 'SELECT body FROM outbound_payload WHERE id = ?').get(payloadId) as { body: Buffer } | undefined;
  return row ? row.body : null;
}

/**
 * Marks rows delivered and lets go of their content: a sent copy needs no bytes any more (the row stays for bounce
 * matching), and a shared payload is deleted once no row refers to it. One transaction (inside the delivery loop's
 * write turn, a savepoint): each payload's use is checked once, after all its rows let go of it, not once per row.
 */
export function markSentRows(db: Db, rows: ReadonlyArray<{ id: number; reply: string }>, now: number): void {
  if (rows.length === 0) return;
  const select = statement(db, 'SELECT payload_id FROM outbound WHERE id = ?');
  const update = statement(
    db,
    `UPDATE outbound SET state = 'sent', last_reply = ?, updated_at = ?, head = x'', tail = x'', payload_id = NULL WHERE id = ?`,
  );
  db.transaction(() => {
    const payloads = new Set<number>();
    for (const { id, reply } of rows) {
      const row = select.get(id) as { payload_id: number | null } | undefined;
      update.run(clipReply(reply), now, id);
      if (row?.payload_id != null) payloads.add(row.payload_id);
    }
    for (const payloadId of payloads) dropPayloadIfUnused(db, payloadId);
    notifyStateChange(db, rows.map(({ id, reply }) => ({ id, state: 'sent', reply: clipReply(reply), at: now })));
  })();
}

function dropPayloadIfUnused(db: Db, payloadId: number): void {
  const used = statement(db, 'SELECT 1 FROM outbound WHERE payload_id = ? LIMIT 1').get(payloadId);
  if (!used) statement(db, 'DELETE FROM outbound_payload WHERE id = ?').run(payloadId);
}

export function markDeferred(db: Db, id: number, reply: string, nextAttemptAt: number, now: number): void {
  db.transaction(() => {
    statement(db, `UPDATE outbound SET state = 'deferred', last_reply = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?`).run(
      clipReply(reply),
      nextAttemptAt,
      now,
      id,
    );
    notifyStateChange(db, [{ id, state: 'deferred', reply: clipReply(reply), at: now }]);
  })();
}

/** Failed, expired and suspended rows keep their content, so an admin's retry can still send them. */
export function markFinal(db: Db, id: number, state: 'failed' | 'expired' | 'suspended', reply: string, now: number): void {
  db.transaction(() => {
    statement(db, 'UPDATE outbound SET state = ?, last_reply = ?, updated_at = ? WHERE id = ?').run(state, clipReply(reply), now, id);
    notifyStateChange(db, [{ id, state, reply: clipReply(reply), at: now }]);
  })();
}

/** The copies of one message that a spool row queued (matched by the copy's Message-ID), for audit trails. */
export function copiesOf(db: Db, spoolId: string, messageId: string | null): Array<{ id: number; recipient: string; state: OutboundState }> {
  return statement(db, 'SELECT id, recipient, state FROM outbound WHERE spool_id = ? AND message_id IS ?').all(spoolId, messageId) as Array<{
    id: number;
    recipient: string;
    state: OutboundState;
  }>;
}

/**
 * After a crash, rows caught in 'sending' may or may not have reached the relay: send them again (at-least-once;
 * the only duplicates are these in-flight rows). Returns how many rows were requeued.
 */
export function requeueInFlight(db: Db, now: number): number {
  return db.prepare(`UPDATE outbound SET state = 'queued', next_attempt_at = ?, updated_at = ? WHERE state = 'sending'`).run(now, now).changes;
}

/** Rows that were tried and are still waiting past the maximum age become dead letters. */
export function expireOld(db: Db, maxAgeMs: number, now: number): number {
  return db.transaction((): number => {
    const expired = db
      .prepare(
        `UPDATE outbound SET state = 'expired', updated_at = ?,
           last_reply = 'expired after ' || attempts || ' attempts; last reply: ' || coalesce(last_reply, 'none')
         WHERE state IN ('queued', 'deferred') AND attempts > 0 AND coalesce(retried_at, created_at) < ?
         RETURNING id, last_reply`,
      )
      .all(now, now - maxAgeMs) as Array<{ id: number; last_reply: string }>;
    notifyStateChange(db, expired.map((row) => ({ id: row.id, state: 'expired', reply: row.last_reply, at: now })));
    return expired.length;
  })();
}

/** Queued and deferred rows of a member whose delivery was just suspended. */
export function suspendPendingRows(db: Db, list: string, address: string, now: number): number {
  return db
    .prepare(
      `UPDATE outbound SET state = 'suspended', updated_at = ?, last_reply = ?
       WHERE list = ? AND lower(recipient) = ? AND state IN ('queued', 'deferred')`,
    )
    .run(now, suspendedReply, list, address.toLowerCase()).changes;
}

/** How many copies to a member are held back because delivery to them is suspended. */
export function countSuspendedRows(db: Db, list: string, address: string): number {
  return (
    db.prepare(`SELECT count(*) AS n FROM outbound WHERE list = ? AND lower(recipient) = ? AND state = 'suspended'`).get(list, address.toLowerCase()) as {
      n: number;
    }
  ).n;
}

/** A member's suspended rows become due now (an admin re-enabled delivery); returns how many. */
export function requeueSuspendedRows(db: Db, list: string, address: string, now: number): number {
  return db
    .prepare(
      `UPDATE outbound SET state = 'queued', next_attempt_at = ?, retried_at = ?, updated_at = ?
       WHERE list = ? AND lower(recipient) = ? AND state = 'suspended'`,
    )
    .run(now, now, now, list, address.toLowerCase()).changes;
}

export function queueCounts(db: Db): Record<OutboundState, number> {
  const counts = Object.fromEntries(outboundStates.map((state) => [state, 0])) as Record<OutboundState, number>;
  for (const row of db.prepare('SELECT state, count(*) AS n FROM outbound GROUP BY state').all() as Array<{ state: OutboundState; n: number }>) {
    counts[row.state] = row.n;
  }
  return counts;
}

/** Age in milliseconds of the oldest row still waiting to be delivered (queued, sending or deferred), 0 if none. */
export function oldestPendingAgeMs(db: Db, now: number): number {
  const row = db.prepare(`SELECT min(created_at) AS oldest FROM outbound WHERE state IN ('queued', 'sending', 'deferred')`).get() as {
    oldest: number | null;
  };
  return row.oldest === null ? 0 : Math.max(0, now - row.oldest);
}

export function listOutbound(db: Db, options: { states?: readonly OutboundState[]; limit?: number } = {}): OutboundRow[] {
  const states = options.states ?? outboundStates;
  const placeholders = states.map(() => '?').join(', ');
  const records = db
    .prepare(`SELECT ${rowColumns} FROM outbound WHERE state IN (${placeholders}) ORDER BY id LIMIT ?`)
    .all(...states, options.limit ?? 1000) as RowRecord[];
  return records.map(toRow);
}

export function getOutbound(db: Db, id: number): OutboundRow | null {
  const record = db.prepare(`SELECT ${rowColumns} FROM outbound WHERE id = ?`).get(id) as RowRecord | undefined;
  return record ? toRow(record) : null;
}

export type RetryOutcome = 'requeued' | 'not-found' | 'already-sent' | 'in-flight' | 'already-queued';

/** An admin's retry: the row becomes due now, with a fresh maximum age. */
export function retryOutbound(db: Db, id: number, now: number = Date.now()): RetryOutcome {
  const row = getOutbound(db, id);
  if (!row) return 'not-found';
  if (row.state === 'sent') return 'already-sent';
  if (row.state === 'sending') return 'in-flight';
  if (row.state === 'queued' && row.nextAttemptAt <= now) return 'already-queued';
  db.prepare(`UPDATE outbound SET state = 'queued', next_attempt_at = ?, retried_at = ?, updated_at = ? WHERE id = ?`).run(now, now, now, id);
  return 'requeued';
}

/** Requeues every dead letter and deferred row; returns how many rows became due now. */
export function retryAllOutbound(db: Db, now: number = Date.now()): number {
  return db
    .prepare(
      `UPDATE outbound SET state = 'queued', next_attempt_at = ?, retried_at = ?, updated_at = ?
       WHERE state IN ('deferred', 'failed', 'expired', 'suspended') OR (state = 'queued' AND next_attempt_at > ?)`,
    )
    .run(now, now, now, now).changes;
}

/**
 * Deletes dead letters (failed, expired, suspended) and delivered rows; with `everything`, also rows still waiting.
 * Rows in flight are never touched. Returns the numbers of rows and payloads deleted.
 */
export function purgeOutbound(db: Db, options: { everything?: boolean } = {}): { rows: number; payloads: number } {
  const states: OutboundState[] = options.everything ? ['sent', 'failed', 'expired', 'suspended', 'queued', 'deferred'] : ['sent', 'failed', 'expired', 'suspended'];
  return db.transaction(() => {
    const rows = db.prepare(`DELETE FROM outbound WHERE state IN (${states.map(() => '?').join(', ')})`).run(...states).changes;
    const payloads = db.prepare('DELETE FROM outbound_payload WHERE id NOT IN (SELECT payload_id FROM outbound WHERE payload_id IS NOT NULL)').run().changes;
    return { rows, payloads };
  })();
}

/** Scheduled cleanup: delivered rows and dead letters older than the retention period go, with payloads nobody needs. */
export function cleanupOutbound(db: Db, retentionDays: number, now: number = Date.now()): number {
  const cutoff = now - retentionDays * 86_400_000;
  return db.transaction(() => {
    const rows = db
      .prepare(`DELETE FROM outbound WHERE state IN ('sent', 'failed', 'expired', 'suspended') AND updated_at < ?`)
      .run(cutoff).changes;
    db.prepare('DELETE FROM outbound_payload WHERE id NOT IN (SELECT payload_id FROM outbound WHERE payload_id IS NOT NULL)').run();
    return rows;
  })();
}

/** The list and member address a queue row went to, for bounce matching. */
export function rowRecipient(db: Db, id: number): { list: string; recipient: string; spoolId: string | null } | null {
  const row = db.prepare('SELECT list, recipient, spool_id FROM outbound WHERE id = ?').get(id) as { list: string; recipient: string; spool_id: string | null } | undefined;
  return row ? { list: row.list, recipient: row.recipient, spoolId: row.spool_id } : null;
}
