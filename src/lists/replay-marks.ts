// Replay marks: each signature is accepted once across all lists; each list takes the same bytes or Message-ID once.
import { createHash } from 'node:crypto';
import type { Db } from '../store/database.ts';
import { statement } from '../store/statements.ts';

/** Per-list marks: the same bytes again (a retransmission) and the same Message-ID again. */
export type ListMarkKind = 'raw' | 'message-id';

export interface ListMark {
  kind: ListMarkKind;
  /** sha256 hex, so no Message-ID is kept in clear. */
  digest: string;
}

export function digestOf(...parts: Array<string | Buffer>): string {
  const hash = createHash('sha256');
  parts.forEach((part, index) => {
    if (index > 0) hash.update('\u0000');
    hash.update(part);
  });
  return hash.digest('hex');
}

/** The spool row that took this mark on this list before, or null. */
export function listMarkTakenBy(db: Db, list: string, mark: ListMark): string | null {
  const row = statement(db, 'SELECT spool_id FROM seen_posts WHERE list = ? AND kind = ? AND digest = ?').get(list, mark.kind, mark.digest) as
    | { spool_id: string }
    | undefined;
  return row?.spool_id ?? null;
}

export function recordListMarks(db: Db, list: string, marks: ListMark[], spoolId: string, at: number): void {
  const insert = statement(db, 'INSERT OR IGNORE INTO seen_posts (list, kind, digest, spool_id, seen_at) VALUES (?, ?, ?, ?, ?)');
  for (const mark of marks) insert.run(list, mark.kind, mark.digest, spoolId, at);
}

export interface SignatureUse {
  /** The spool row (SMTP transaction) using the signature: the same row may use it for several lists. */
  spoolId: string;
  /** The list (or command address) it was used for, for the admins' detail. */
  list: string;
  /** Milliseconds since the epoch. */
  at: number;
}

/** The earlier use of this signature by another spool row, or null when it is fresh for `spoolId`. */
export function earlierSignatureUse(db: Db, digest: string, spoolId: string): { spoolId: string; list: string } | null {
  const row = statement(db, 'SELECT spool_id, list FROM accepted_signatures WHERE digest = ?').get(digest) as { spool_id: string; list: string } | undefined;
  return row && row.spool_id !== spoolId ? { spoolId: row.spool_id, list: row.list } : null;
}

/** Marks the signature used; a second use by the same spool row changes nothing. Run it in the commit that acts on the signature. */
export function recordSignatureUse(db: Db, digest: string, use: SignatureUse): void {
  statement(db, 'INSERT OR IGNORE INTO accepted_signatures (digest, spool_id, list, accepted_at) VALUES (?, ?, ?, ?)').run(digest, use.spoolId, use.list, use.at);
}

/**
 * The one-step form for signed commands: true when the signature was fresh (now marked as used by `use`), false when
 * another spool row used it before. Atomic on its own; inside a caller's transaction it joins that transaction.
 */
export function acceptSignatureOnce(db: Db, digest: string, use: SignatureUse): boolean {
  return db.transaction(() => {
    if (earlierSignatureUse(db, digest, use.spoolId)) return false;
    recordSignatureUse(db, digest, use);
    return true;
  })();
}
