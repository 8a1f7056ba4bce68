// Prepared statements cached per database handle: preparing costs more than running, and the delivery loop runs a few per copy.
import type { Statement } from 'better-sqlite3';
import type { Db } from './database.ts';

const cache = new WeakMap<Db, Map<string, Statement>>();

/** The prepared statement for this SQL text on this handle, prepared on first use. */
export function statement(db: Db, sql: string): Statement {
  let statements = cache.get(db);
  if (!statements) {
    statements = new Map();
    cache.set(db, statements);
  }
  let prepared = statements.get(sql);
  if (!prepared) {
    prepared = db.prepare(sql);
    statements.set(sql, prepared);
  }
  return prepared;
}

/**
 * Runs `work` (typically a transaction) with synchronous=NORMAL instead of the connection's FULL: in WAL mode its
 * commit is not fsynced on its own. A killed process loses none of it; only a power cut or an OS crash can undo the
 * last such commits, and then they are done again. So this is for bookkeeping that nobody outside was told about yet:
 * a pipeline claim or result (the spooled message, fsynced before intake's 250, is handled again), the delivery
 * queue's outcomes (the copy is sent again, which at-least-once allows). Never for what precedes an SMTP 250.
 * The next fsynced commit of any connection (intake's) makes these durable too, since the WAL is one sequence.
 */
export function withoutFsync<T>(db: Db, work: () => T): T {
  const previous = (statement(db, 'PRAGMA synchronous').get() as { synchronous: number }).synchronous;
  if (previous <= 1) return work();
  statement(db, 'PRAGMA synchronous = NORMAL').run();
  try {
    return work();
  } finally {
    statement(db, `PRAGMA synchronous = ${previous}`).run();
  }
}
