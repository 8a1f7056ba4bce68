// Opens the one SQLite file that holds all of Embargo's state, with durable settings, and applies the migrations it is handed.
import Database from 'better-sqlite3';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { migrate, type Migration } from './migrations.ts';

export type Db = Database.Database;

/** `migrations`: every module's tables, in order (src/schema.ts); the ones this file has not seen yet are applied. */
export function openDatabase(file: string, migrations: readonly Migration[]): Db {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  // WAL + FULL: a commit survives power loss before we answer 250; readers never block the writer.
  db.pragma('journal_mode = WAL');
  // The spool and the queue hold mail and its metadata: owner only, whatever the umask or a data directory made
  // beforehand allows. SQLite gives the -wal and -shm files the database file's mode.
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      chmodSync(file + suffix, 0o600);
    } catch {
      // Not there yet, or not ours (a CLI run by another user): nothing to tighten from here.
    }
  }
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db, migrations);
  return db;
}

/**
 * A consistent copy of the database file at `destination` while the daemon keeps writing, with SQLite's online backup
 * API. After a first small step the rest goes in one step (one read snapshot): in small steps, every write by the
 * daemon between two steps would restart the copy, and a busy list could keep it from ever finishing.
 */
export async function backupDatabase(source: string, destination: string): Promise<void> {
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    await db.backup(destination, { progress: ({ remainingPages }) => Math.max(remainingPages, 100) });
  } finally {
    db.close();
  }
  chmodSync(destination, 0o600);
}
