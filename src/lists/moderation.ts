// Held posts and moderators' decisions: the moderation table beside the spool row that keeps the held raw bytes.
import { requeueDecided, spoolSummaries } from '../queues/spool.ts';
import type { Db } from '../store/database.ts';
import { statement } from '../store/statements.ts';

export type Decision = 'pending' | 'approved' | 'rejected';

export interface HeldPost {
  id: string;
  list: string;
  heldAt: number;
  reason: string;
  sender: string | null;
  decision: Decision;
  decidedBy: string | null;
  decidedAt: number | null;
  rejectReason: string | null;
  size: number;
}

interface HeldRow {
  spool_id: string;
  list: string;
  held_at: number;
  reason: string;
  sender: string | null;
  decision: Decision;
  decided_by: string | null;
  decided_at: number | null;
  reject_reason: string | null;
}

function toHeld(row: HeldRow, size: number): HeldPost {
  return {
    id: row.spool_id,
    list: row.list,
    heldAt: row.held_at,
    reason: row.reason,
    sender: row.sender,
    decision: row.decision,
    decidedBy: row.decided_by,
    decidedAt: row.decided_at,
    rejectReason: row.reject_reason,
    size,
  };
}

/** Records a hold; run inside the transaction that moves the spool row to 'held'. */
export function recordHold(db: Db, hold: { spoolId: string; list: string; reason: string; sender: string | null; now: number }): void {
  db.prepare(
    `INSERT INTO moderation (spool_id, list, held_at, reason, sender) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT(spool_id) DO UPDATE SET decision = 'pending', decided_by = NULL, decided_at = NULL, reject_reason = NULL, done_at = NULL`,
  ).run(hold.spoolId, hold.list, hold.now, hold.reason, hold.sender);
}

/** Posts of a list still waiting for a decision (their spool row still held), oldest first. */
export function listHeld(db: Db, list?: string): HeldPost[] {
  const rows = db
    .prepare(`SELECT * FROM moderation WHERE decision = 'pending' ${list ? 'AND list = ?' : ''} ORDER BY held_at, spool_id`)
    .all(...(list ? [list] : [])) as HeldRow[];
  const messages = spoolSummaries(db, rows.map((row) => row.spool_id));
  return rows.flatMap((row) => {
    const message = messages.get(row.spool_id);
    return message?.state === 'held' ? [toHeld(row, message.size)] : [];
  });
}

export function getHeld(db: Db, id: string): HeldPost | null {
  const row = db.prepare('SELECT * FROM moderation WHERE spool_id = ?').get(id) as HeldRow | undefined;
  return row ? toHeld(row, spoolSummaries(db, [id]).get(id)?.size ?? 0) : null;
}

export type DecideResult = { ok: true; post: HeldPost } | { ok: false; reason: 'not-found' | 'not-held' };

/**
 * Records a moderator's decision and puts the spool row back in the queue, where the worker carries it out
 * (approve: the rest of the pipeline and the fan-out; reject: the bounce). One code path for CLI and mail.
 */
export function decide(
  db: Db,
  decision: { id: string; approve: boolean; by: string; reason?: string; now: number; list?: string },
): DecideResult {
  return db.transaction((): DecideResult => {
    const held = getHeld(db, decision.id.toUpperCase());
    if (!held || (decision.list && held.list !== decision.list)) return { ok: false, reason: 'not-found' };
    if (held.decision !== 'pending' || !requeueDecided(db, held.id, decision.now)) return { ok: false, reason: 'not-held' };
    db.prepare('UPDATE moderation SET decision = ?, decided_by = ?, decided_at = ?, reject_reason = ? WHERE spool_id = ?').run(
      decision.approve ? 'approved' : 'rejected',
      decision.by,
      decision.now,
      decision.approve ? null : (decision.reason ?? null),
      held.id,
    );
    return { ok: true, post: { ...held, decision: decision.approve ? 'approved' : 'rejected' } };
  })();
}

/** A decision waiting for the worker, if any (the spool row was claimed again after a moderator decided). */
export function pendingDecision(db: Db, spoolId: string): HeldPost | null {
  // Prepared once per handle (store/statements.ts): the pipeline asks this for every message it handles.
  const row = statement(db, `SELECT * FROM moderation WHERE spool_id = ? AND decision != 'pending' AND done_at IS NULL`).get(spoolId) as
    | HeldRow
    | undefined;
  return row ? toHeld(row, 0) : null;
}

export function markDecisionDone(db: Db, spoolId: string, now: number): void {
  db.prepare('UPDATE moderation SET done_at = ? WHERE spool_id = ?').run(now, spoolId);
}

/** Decided posts whose spool row the cleanup has deleted: nothing is left to act on. Returns how many went. */
export function forgetDecidedWithoutMessage(db: Db): number {
  const decided = (db.prepare(`SELECT spool_id FROM moderation WHERE decision != 'pending'`).all() as Array<{ spool_id: string }>).map((row) => row.spool_id);
  const stillSpooled = spoolSummaries(db, decided);
  const forget = db.prepare('DELETE FROM moderation WHERE spool_id = ?');
  return decided.filter((id) => !stillSpooled.has(id)).reduce((count, id) => count + forget.run(id).changes, 0);
}
