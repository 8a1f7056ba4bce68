// The inbound spool: stores each accepted message durably and hands queued messages to the pipeline worker, fairly across sources.
import { randomInt } from 'node:crypto';
import type { Db } from '../store/database.ts';
import { statement, withoutFsync } from '../store/statements.ts';

/** queued → processing → done | held | rejected | discarded | shunted (an unexpected exception; raw bytes kept for admins). */
export type SpoolState = 'queued' | 'processing' | 'done' | 'held' | 'rejected' | 'discarded' | 'shunted';

/**
 * Who a message comes from, for scheduling and metrics only (never for a decision): 'poster' = the envelope sender is
 * a registered poster of a list it is addressed to, 'bounce' = the null sender (delivery reports), 'other' = the rest.
 */
export type SourceClass = 'poster' | 'bounce' | 'other';
export const sourceClasses: readonly SourceClass[] = ['poster', 'bounce', 'other'];

export interface SpoolEntry {
  /** An id from newId(), when the caller needs it before the insert (intake names it in the Received field). */
  id?: string;
  mailFrom: string;
  rcptTo: string[];
  remoteAddress: string | null;
  helo: string | null;
  raw: Buffer;
  /** Default 'other'. */
  sourceClass?: SourceClass;
}

export interface SpoolRow extends SpoolEntry {
  id: string;
  receivedAt: number;
  size: number;
  state: SpoolState;
  attempts: number;
  list: string | null;
  outcome: string | null;
  reason: string | null;
  updatedAt: number;
}

export interface SpoolMark {
  /** The policy outcome in words, e.g. 'accept', 'reject', 'hold', 'discard', 'shunt'. */
  outcome?: string | null;
  /** Why, for admins and bounces (never message content). */
  reason?: string | null;
  list?: string | null;
}

/** Messages received and not yet finished (queued or processing). */
export interface Backlog {
  /** From one client address. */
  fromAddress: number;
  total: number;
}

export interface ClassBacklog {
  sourceClass: SourceClass;
  /** Queued or processing. */
  messages: number;
  /** Arrival time of the oldest of them (ms), null when none waits. */
  oldestReceivedAt: number | null;
}

export interface Spool {
  /** A fresh spool id (sortable by arrival), for an entry stored later with insert or insertMany. */
  newId(): string;
  /** Stores one message in one transaction; when it returns, the row is committed (fsynced with synchronous=FULL). */
  insert(entry: SpoolEntry): string;
  /** Stores several messages in one transaction (group commit): all are committed, or none and it throws. */
  insertMany(entries: SpoolEntry[]): string[];
  /**
   * Takes the next queued message for processing (state → processing), or null when none waits: the lowest turn first
   * (fair across sources), within a turn a registered poster's mail, then by arrival. A claim is not an attempt: the
   * worker claims a few messages ahead of their turn, and a crash while they wait is none of their doing.
   */
  claimNext(): SpoolRow | null;
  /**
   * Counts an attempt at a claimed message as its handling begins, before anything that could take the process down;
   * returns the count. A message whose handling began more often than the worker allows is shunted, not tried again.
   */
  startAttempt(id: string): number;
  /** Gives a claimed message back to the queue untouched (the worker stopped before its turn). */
  unclaim(id: string): boolean;
  /** Unprocessed messages from one client address and in all (intake's backpressure). */
  backlog(remoteAddress: string | null): Backlog;
  /** Unprocessed messages by source class, with the oldest one's arrival (metrics, `embargo queue`). */
  backlogByClass(): ClassBacklog[];
  markState(id: string, state: SpoolState, mark?: SpoolMark): boolean;
  get(id: string): SpoolRow | null;
  /** On start: messages a crash left in 'processing' go back to 'queued', so none is lost. Returns how many. */
  resetProcessing(): number;
  countByState(): Record<string, number>;
  /** Deletes finished rows (done, rejected, discarded) received before the given time; held and shunted rows stay. */
  purgeFinished(receivedBefore: number): number;
}

interface RawRow {
  id: string;
  received_at: number;
  mail_from: string;
  rcpt_to: string;
  remote_address: string | null;
  helo: string | null;
  size: number;
  raw: Buffer;
  state: SpoolState;
  attempts: number;
  list: string | null;
  outcome: string | null;
  reason: string | null;
  updated_at: number;
  source_class: SourceClass;
}

function toRow(row: RawRow): SpoolRow {
  return {
    id: row.id,
    receivedAt: row.received_at,
    mailFrom: row.mail_from,
    rcptTo: JSON.parse(row.rcpt_to) as string[],
    remoteAddress: row.remote_address,
    helo: row.helo,
    size: row.size,
    raw: row.raw,
    sourceClass: row.source_class,
    state: row.state,
    attempts: row.attempts,
    list: row.list,
    outcome: row.outcome,
    reason: row.reason,
    updatedAt: row.updated_at,
  };
}

/** SQLite's "another connection holds the write lock": a reason to try again later, never a failure of the data. */
export function isLockConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

// Crockford base32: no I, L, O, U, so ids read aloud and copied from logs survive.
const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function encodeBase32(value: number, length: number): string {
  let text = '';
  let rest = value;
  for (let index = 0; index < length; index++) {
    text = alphabet[rest % 32] + text;
    rest = Math.floor(rest / 32);
  }
  return text;
}

/**
 * Makes spool ids: 10 characters of milliseconds since 1970 and 5 of a counter that starts at a random value each
 * millisecond and counts up within it, so ids sort by arrival even within one millisecond and differ across restarts.
 */
export function createIdGenerator(now: () => number = Date.now): () => string {
  let lastTime = -1;
  let counter = 0;
  const counterSpace = 32 ** 5;
  return () => {
    let time = now();
    if (time <= lastTime) {
      time = lastTime;
      counter++;
      if (counter >= counterSpace) {
        // More than a million ids in one millisecond: borrow the next millisecond rather than repeat.
        time = lastTime + 1;
        counter = randomInt(0, counterSpace / 2);
      }
    } else {
      counter = randomInt(0, counterSpace / 2);
    }
    lastTime = time;
    return encodeBase32(time, 10) + encodeBase32(counter, 5);
  };
}

/** One source for fair scheduling: the client address and the envelope sender together. */
function sourceOf(entry: SpoolEntry): string {
  return `${entry.remoteAddress ?? ''} ${entry.mailFrom.toLowerCase()}`;
}

export function createSpool(db: Db, options: { now?: () => number } = {}): Spool {
  const now = options.now ?? Date.now;
  const nextId = createIdGenerator(now);

  // The raw bytes live in spool_raw, written once: state changes rewrite only the small spool_rows row.
  // The turn: one past the source's last unfinished row (a source's rows stay in order), but never before the lowest
  // turn still queued (a source that had nothing waiting joins the current round instead of jumping the queue or
  // queueing behind a flood's last row).
  const insertStatement = db.prepare(
    `INSERT INTO spool_rows (id, received_at, mail_from, rcpt_to, remote_address, helo, size, state, attempts, updated_at, source, source_class, turn)
     VALUES (@id, @receivedAt, @mailFrom, @rcptTo, @remoteAddress, @helo, @size, 'queued', 0, @receivedAt, @source, @sourceClass, MAX(
       COALESCE((SELECT MAX(turn) + 1 FROM spool_rows WHERE source = @source AND state IN ('queued', 'processing')), 0),
       COALESCE((SELECT MIN(turn) FROM spool_rows WHERE state = 'queued'), 0)))`,
  );
  const insertRawStatement = db.prepare('INSERT INTO spool_raw (id, raw) VALUES (?, ?)');
  const claimStatement = db.prepare(
    `UPDATE spool_rows SET state = 'processing', updated_at = @now
     WHERE id = (SELECT id FROM spool_rows WHERE state = 'queued' ORDER BY turn, source_class <> 'poster', received_at, id LIMIT 1)
     RETURNING id`,
  );
  const markStatement = db.prepare(
    `UPDATE spool_rows SET state = @state, updated_at = @now,
       outcome = COALESCE(@outcome, outcome), reason = COALESCE(@reason, reason), list = COALESCE(@list, list)
     WHERE id = @id`,
  );
  const getStatement = db.prepare('SELECT r.*, b.raw FROM spool_rows AS r JOIN spool_raw AS b ON b.id = r.id WHERE r.id = ?');
  const unclaimStatement = db.prepare(
    `UPDATE spool_rows SET state = 'queued', updated_at = @now WHERE id = @id AND state = 'processing'`,
  );
  const startAttemptStatement = db.prepare(`UPDATE spool_rows SET attempts = attempts + 1, updated_at = @now WHERE id = @id RETURNING attempts`);
  const resetStatement = db.prepare(`UPDATE spool_rows SET state = 'queued', updated_at = ? WHERE state = 'processing'`);
  const countStatement = db.prepare('SELECT state, COUNT(*) AS count FROM spool_rows GROUP BY state');
  const addressBacklogStatement = db.prepare(`SELECT COUNT(*) AS count FROM spool_rows WHERE remote_address IS ? AND state IN ('queued', 'processing')`);
  const totalBacklogStatement = db.prepare(`SELECT COUNT(*) AS count FROM spool_rows WHERE state IN ('queued', 'processing')`);
  const classBacklogStatement = db.prepare(
    `SELECT source_class, COUNT(*) AS count, MIN(received_at) AS oldest FROM spool_rows WHERE state IN ('queued', 'processing') GROUP BY source_class`,
  );
  const purgeable = `state IN ('done', 'rejected', 'discarded') AND received_at < ?`;
  const purgeRawStatement = db.prepare(`DELETE FROM spool_raw WHERE id IN (SELECT id FROM spool_rows WHERE ${purgeable})`);
  const purgeStatement = db.prepare(`DELETE FROM spool_rows WHERE ${purgeable}`);
  const purgeTransaction = db.transaction((receivedBefore: number): number => {
    purgeRawStatement.run(receivedBefore);
    return purgeStatement.run(receivedBefore).changes;
  });

  const insertOne = (entry: SpoolEntry): string => {
    const id = entry.id ?? nextId();
    insertStatement.run({
      id,
      receivedAt: now(),
      mailFrom: entry.mailFrom,
      rcptTo: JSON.stringify(entry.rcptTo),
      remoteAddress: entry.remoteAddress,
      helo: entry.helo,
      size: entry.raw.length,
      source: sourceOf(entry),
      sourceClass: entry.sourceClass ?? 'other',
    });
    insertRawStatement.run(id, entry.raw);
    return id;
  };
  const insertManyTransaction = db.transaction((entries: SpoolEntry[]) => entries.map(insertOne));
  // The claim and the read of the claimed row, in one transaction.
  const claimTransaction = db.transaction((): RawRow | undefined => {
    const claimed = claimStatement.get({ now: now() }) as { id: string } | undefined;
    return claimed ? (getStatement.get(claimed.id) as RawRow) : undefined;
  });

  return {
    newId: nextId,
    // IMMEDIATE takes the write lock at BEGIN, so a conflict shows up before any work, never halfway.
    insert(entry) {
      return insertManyTransaction.immediate([entry])[0];
    },
    insertMany(entries) {
      if (entries.length === 0) return [];
      return insertManyTransaction.immediate(entries);
    },
    claimNext() {
      let row: RawRow | undefined;
      try {
        // Bookkeeping only: a claim lost in a power cut leaves the row queued, as a restart would anyway.
        row = withoutFsync(db, () => claimTransaction.immediate());
      } catch (error) {
        // Another connection held the write lock past busy_timeout: nothing claimable right now, not a bug.
        if (isLockConflict(error)) return null;
        throw error;
      }
      return row ? toRow(row) : null;
    },
    markState(id, state, mark = {}) {
      const result = markStatement.run({
        id,
        state,
        now: now(),
        outcome: mark.outcome ?? null,
        reason: mark.reason ?? null,
        list: mark.list ?? null,
      });
      return result.changes > 0;
    },
    get(id) {
      const row = getStatement.get(id) as RawRow | undefined;
      return row ? toRow(row) : null;
    },
    resetProcessing() {
      return resetStatement.run(now()).changes;
    },
    startAttempt(id) {
      // Without its own fsync, like the claim: it survives a crash of the process (WAL), which is what it counts.
      const row = withoutFsync(db, () => startAttemptStatement.get({ id, now: now() })) as { attempts: number } | undefined;
      if (!row) throw new Error(`spool row ${id} does not exist`);
      return row.attempts;
    },
    unclaim(id) {
      return unclaimStatement.run({ id, now: now() }).changes > 0;
    },
    backlog(remoteAddress) {
      return {
        fromAddress: (addressBacklogStatement.get(remoteAddress) as { count: number }).count,
        total: (totalBacklogStatement.get() as { count: number }).count,
      };
    },
    backlogByClass() {
      const rows = classBacklogStatement.all() as Array<{ source_class: SourceClass; count: number; oldest: number }>;
      return sourceClasses.map((sourceClass) => {
        const row = rows.find((each) => each.source_class === sourceClass);
        return { sourceClass, messages: row?.count ?? 0, oldestReceivedAt: row?.oldest ?? null };
      });
    },
    countByState() {
      const counts: Record<string, number> = {};
      for (const row of countStatement.all() as Array<{ state: string; count: number }>) counts[row.state] = row.count;
      return counts;
    },
    purgeFinished(receivedBefore) {
      return purgeTransaction(receivedBefore);
    },
  };
}

/**
 * A held message a moderator has decided goes back to the queue, where the worker carries the decision out; its
 * attempts restart, because the crash-retry bound counts tries of one decision, not the hold before it. False when
 * the message is not held (already decided, or gone).
 */
export function requeueDecided(db: Db, id: string, now: number): boolean {
  return statement(db, `UPDATE spool_rows SET state = 'queued', attempts = 0, updated_at = ? WHERE id = ? AND state = 'held'`).run(now, id).changes > 0;
}

/** State and size of those of `ids` still in the spool, for views kept beside other tables (held posts). */
export function spoolSummaries(db: Db, ids: readonly string[]): Map<string, { state: SpoolState; size: number }> {
  const select = statement(db, 'SELECT state, size FROM spool_rows WHERE id = ?');
  const summaries = new Map<string, { state: SpoolState; size: number }>();
  for (const id of ids) {
    const row = select.get(id) as { state: SpoolState; size: number | null } | undefined;
    if (row) summaries.set(id, { state: row.state, size: row.size ?? 0 });
  }
  return summaries;
}
