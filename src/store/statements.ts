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
