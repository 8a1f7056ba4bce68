// Bounce scores (the member_bounces and counted_bounces tables): each counted bounce adds to its member's decaying score; past a threshold delivery is suspended.
import type { Db } from '../store/database.ts';
import { statement } from '../store/statements.ts';
import { requeueSuspendedRows, suspendPendingRows } from './outbound.ts';

export const defaultBounceThreshold = 5;
export const defaultBounceHalfLifeDays = 7;

export interface BounceRecord {
  list: string;
  address: string;
  /** Decayed to `now`. */
  score: number;
  bouncesTotal: number;
  lastBounceAt: number | null;
  lastReason: string | null;
  suspendedAt: number | null;
}

interface BounceRecordRow {
  list: string;
  address: string;
  score: number;
  scored_at: number;
  bounces_total: number;
  last_bounce_at: number | null;
  last_reason: string | null;
  suspended_at: number | null;
  last_row_id: number | null;
}

/** One bounce, attributed to its member and its queue row, and how it weighs. */
export interface BounceScoring {
  list: string;
  address: string;
  rowId: number;
  /** The post the bounced copy carried (null for notices, which count as a post of their own). */
  spoolId: string | null;
  weight: number;
  now: number;
  threshold: number;
  halfLifeMs: number;
}

/** Like Mailman: one bounce a day raises a member's score, however many arrive. */
const scoreIntervalMs = 86_400_000;

/** A suspension needs bounces for at least this many different posts: one lost post is not a dead address. */
const minimumPostsForSuspension = 2;

/** The member's score after this bounce, or why the bounce does not count; writes nothing. */
export function nextScore(db: Db, scoring: BounceScoring): { score: number; alreadySuspended: boolean; suspendNow: boolean } | 'duplicate' | 'same-day' {
  if (statement(db, 'SELECT 1 FROM counted_bounces WHERE row_id = ?').get(scoring.rowId)) return 'duplicate';
  const recent = statement(db, 'SELECT 1 FROM counted_bounces WHERE list = ? AND address = ? AND counted_at > ? AND cleared_at IS NULL LIMIT 1').get(
    scoring.list,
    scoring.address,
    scoring.now - scoreIntervalMs,
  );
  if (recent) return 'same-day';
  const existing = db.prepare('SELECT * FROM member_bounces WHERE list = ? AND address = ?').get(scoring.list, scoring.address) as BounceRecordRow | undefined;
  const previous = existing ? decay(existing.score, scoring.now - existing.scored_at, scoring.halfLifeMs) : 0;
  const score = previous + scoring.weight;
  const alreadySuspended = existing?.suspended_at != null;
  const { posts } = statement(
    db,
    `SELECT COUNT(DISTINCT coalesce(spool_id, 'row:' || row_id)) AS posts FROM counted_bounces
      WHERE list = ? AND address = ? AND cleared_at IS NULL AND coalesce(spool_id, 'row:' || row_id) != coalesce(?, 'row:' || ?)`,
  ).get(scoring.list, scoring.address, scoring.spoolId, scoring.rowId) as { posts: number };
  const enoughPosts = posts + 1 >= minimumPostsForSuspension;
  return { score, alreadySuspended, suspendNow: !alreadySuspended && score >= scoring.threshold && enoughPosts };
}

/** Writes the bounce: reads the record again, so a write run later than its assessment still adds to what is stored. */
export function recordBounce(db: Db, scoring: BounceScoring, reason: string): void {
  const next = nextScore(db, scoring);
  if (next === 'duplicate' || next === 'same-day') return;
  const { list, address, rowId, now } = scoring;
  statement(db, 'INSERT INTO counted_bounces (row_id, list, address, spool_id, counted_at) VALUES (?, ?, ?, ?, ?)').run(rowId, list, address, scoring.spoolId, now);
  db.prepare(
    `INSERT INTO member_bounces (list, address, score, scored_at, bounces_total, last_bounce_at, last_reason, suspended_at, last_row_id)
     VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)
     ON CONFLICT (list, address) DO UPDATE SET
       score = excluded.score, scored_at = excluded.scored_at, bounces_total = bounces_total + 1,
       last_bounce_at = excluded.last_bounce_at, last_reason = excluded.last_reason,
       suspended_at = coalesce(member_bounces.suspended_at, excluded.suspended_at), last_row_id = excluded.last_row_id`,
  ).run(list, address, next.score, now, now, reason, next.suspendNow ? now : null, rowId);

  if (next.suspendNow) suspendPendingRows(db, list, address, now);
}

function decay(score: number, elapsedMs: number, halfLifeMs: number): number {
  // Whole hours only: bounces that arrive together (a burst after an outage) count in full against the threshold.
  const elapsedHours = Math.floor(elapsedMs / 3_600_000);
  if (elapsedHours <= 0 || halfLifeMs <= 0) return score;
  return score * Math.pow(0.5, (elapsedHours * 3_600_000) / halfLifeMs);
}

/** Whether delivery of this list to this address is suspended after bounces. */
export function isSuspended(db: Db, list: string, address: string): boolean {
  const row = statement(db, 'SELECT suspended_at FROM member_bounces WHERE list = ? AND address = ?').get(list, address.toLowerCase()) as
    | { suspended_at: number | null }
    | undefined;
  return row?.suspended_at != null;
}

/**
 * An admin's re-enable: clears the member's score and suspension. With `requeue`, copies that were held back
 * while suspended become due again. Returns whether there was a record, whether it was suspended, and rows requeued.
 */
export function resetBounces(
  db: Db,
  list: string,
  address: string,
  options: { requeue?: boolean; now?: number } = {},
): { found: boolean; wasSuspended: boolean; requeued: number } {
  const now = options.now ?? Date.now();
  const lower = address.toLowerCase();
  return db.transaction(() => {
    const row = db.prepare('SELECT suspended_at FROM member_bounces WHERE list = ? AND address = ?').get(list, lower) as
      | { suspended_at: number | null }
      | undefined;
    db.prepare('DELETE FROM member_bounces WHERE list = ? AND address = ?').run(list, lower);
    // The bounces counted so far no longer count towards a suspension; their tokens still never count again.
    db.prepare('UPDATE counted_bounces SET cleared_at = ? WHERE list = ? AND address = ? AND cleared_at IS NULL').run(now, list, lower);
    const requeued = options.requeue ? requeueSuspendedRows(db, list, lower, now) : 0;
    return { found: row !== undefined, wasSuspended: row?.suspended_at != null, requeued };
  })();
}

/** Every member with a bounce record, optionally for one list, scores decayed to `now`. */
export function listBounceRecords(db: Db, options: { list?: string; now?: number; halfLifeDays?: number } = {}): BounceRecord[] {
  const now = options.now ?? Date.now();
  const halfLifeMs = (options.halfLifeDays ?? defaultBounceHalfLifeDays) * 86_400_000;
  const rows = (
    options.list
      ? db.prepare('SELECT * FROM member_bounces WHERE list = ? ORDER BY list, address').all(options.list)
      : db.prepare('SELECT * FROM member_bounces ORDER BY list, address').all()
  ) as BounceRecordRow[];
  return rows.map((row) => ({
    list: row.list,
    address: row.address,
    score: decay(row.score, now - row.scored_at, halfLifeMs),
    bouncesTotal: row.bounces_total,
    lastBounceAt: row.last_bounce_at,
    lastReason: row.last_reason,
    suspendedAt: row.suspended_at,
  }));
}
