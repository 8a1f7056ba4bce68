// The spool on a real SQLite file: ids sort by arrival, claims go oldest first, a crash's claims return to the queue.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createIdGenerator, createSpool } from '../../src/smtp/spool.ts';
import type { SpoolEntry } from '../../src/smtp/spool.ts';
import Database from 'better-sqlite3';
import { spoolMigrations } from '../../src/smtp/spool-schema.ts';
import { openDatabase } from '../../src/store/database.ts';
import { migrations } from '../../src/schema.ts';
import type { Db } from '../../src/store/database.ts';

const entry = (text: string): SpoolEntry => ({
  mailFrom: 'sender@example.net',
  rcptTo: ['list@lists.example.org'],
  remoteAddress: '127.0.0.1',
  helo: 'client.example.net',
  raw: Buffer.from(text),
});

describe('spool', () => {
  let dir: string;
  let db: Db;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'embargo-spool-'));
    db = openDatabase(join(dir, 'embargo.sqlite'), migrations);
  });
  afterEach(() => {
    if (db.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes short, unique ids that sort by time even within one millisecond', () => {
    let clock = 1_700_000_000_000;
    const next = createIdGenerator(() => clock);
    const ids = [next(), next(), next()];
    clock += 1;
    ids.push(next());
    clock -= 5; // a clock step backwards must not break the order
    ids.push(next());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{15}$/);
  });

  it('stores the envelope and raw bytes, and claims the oldest queued message first', () => {
    const spool = createSpool(db);
    const first = spool.insert(entry('first'));
    const [second, third] = spool.insertMany([entry('second'), entry('third')]);
    const row = spool.get(first)!;
    expect(row).toMatchObject({ mailFrom: 'sender@example.net', rcptTo: ['list@lists.example.org'], state: 'queued', size: 5, attempts: 0 });
    expect(row.raw.toString()).toBe('first');

    expect(spool.claimNext()).toMatchObject({ id: first, state: 'processing', attempts: 1 });
    expect(spool.claimNext()?.id).toBe(second);
    expect(spool.markState(first, 'done', { outcome: 'accept', list: 'xen-security-issues' })).toBe(true);
    expect(spool.get(first)).toMatchObject({ state: 'done', outcome: 'accept', list: 'xen-security-issues' });
    expect(spool.countByState()).toEqual({ done: 1, processing: 1, queued: 1 });
    expect(spool.claimNext()?.id).toBe(third);
    expect(spool.claimNext()).toBeNull();
  });

  it('puts messages left in processing by a crash back in the queue, with their attempt count', () => {
    const spool = createSpool(db);
    const id = spool.insert(entry('crash'));
    spool.claimNext();
    db.close();
    db = openDatabase(join(dir, 'embargo.sqlite'), migrations);
    const reopened = createSpool(db);
    expect(reopened.resetProcessing()).toBe(1);
    expect(reopened.claimNext()).toMatchObject({ id, attempts: 2 });
  });

  it('writes nothing of a group whose transaction fails', () => {
    const spool = createSpool(db);
    db.exec(`CREATE TRIGGER refuse_bad BEFORE INSERT ON spool_raw WHEN NEW.raw = CAST('bad' AS BLOB) BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    expect(() => spool.insertMany([entry('good'), entry('bad')])).toThrow(/refused/);
    expect(spool.countByState()).toEqual({});
  });

  it('keeps the raw bytes apart from the row, so a state change does not rewrite the message', () => {
    const spool = createSpool(db);
    const id = spool.insert(entry('x'.repeat(100_000)));
    db.prepare('PRAGMA wal_checkpoint(TRUNCATE)').get();
    spool.claimNext();
    spool.markState(id, 'done', { outcome: 'accept', list: 'l' });
    // Two small row updates: a few pages in the WAL, not the 25 overflow pages of the message twice.
    const walFrames = (db.prepare('PRAGMA wal_checkpoint(PASSIVE)').get() as { log: number }).log;
    expect(walFrames).toBeLessThan(10);
    expect(spool.get(id)!.raw.toString()).toBe('x'.repeat(100_000));
  });

  it('moves the raw bytes of an older database, and the spool view reads and writes rows as the old table did', () => {
    db.close();
    rmSync(join(dir, 'embargo.sqlite'));
    const old = new Database(join(dir, 'embargo.sqlite'));
    old.exec('CREATE TABLE schema_migrations (id TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)');
    old.exec(spoolMigrations[0].sql);
    old.prepare('INSERT INTO schema_migrations (id, applied_at) VALUES (?, 0)').run(spoolMigrations[0].id);
    old
      .prepare(`INSERT INTO spool (id, received_at, mail_from, rcpt_to, size, raw, state, updated_at) VALUES ('OLD1', 1, 'a@b', '[]', 3, x'414243', 'queued', 1)`)
      .run();
    old.close();
    db = openDatabase(join(dir, 'embargo.sqlite'), migrations);
    const spool = createSpool(db);
    expect(spool.claimNext()).toMatchObject({ id: 'OLD1', raw: Buffer.from('ABC'), state: 'processing', attempts: 1 });
    // Direct SQL on spool, as admins and older tools write it.
    db.prepare(`INSERT INTO spool (id, received_at, mail_from, rcpt_to, size, raw, updated_at) VALUES ('NEW1', 2, 'c@d', '[]', 1, x'44', 2)`).run();
    expect(spool.get('NEW1')).toMatchObject({ state: 'queued', attempts: 0, raw: Buffer.from('D') });
    db.prepare(`UPDATE spool SET state = 'held', reason = 'r' WHERE id = 'NEW1'`).run();
    expect(db.prepare(`SELECT state, reason, raw FROM spool WHERE id = 'NEW1'`).get()).toEqual({ state: 'held', reason: 'r', raw: Buffer.from('D') });
    db.prepare(`DELETE FROM spool WHERE id = 'NEW1'`).run();
    expect(spool.get('NEW1')).toBeNull();
    expect(db.prepare(`SELECT count(*) AS n FROM spool_raw WHERE id = 'NEW1'`).get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT * FROM spool').columns().map((column) => column.name)).toEqual([
      'id', 'received_at', 'mail_from', 'rcpt_to', 'remote_address', 'helo', 'size', 'raw', 'state', 'attempts', 'list', 'outcome', 'reason', 'updated_at',
    ]);
  });

  it('purges finished rows but keeps held and shunted ones', () => {
    let clock = 1_000;
    const spool = createSpool(db, { now: () => clock });
    const ids = spool.insertMany([entry('a'), entry('b'), entry('c')]);
    spool.markState(ids[0], 'done');
    spool.markState(ids[1], 'held');
    spool.markState(ids[2], 'shunted', { reason: 'bug' });
    clock = 10_000;
    expect(spool.purgeFinished(5_000)).toBe(1);
    expect(spool.countByState()).toEqual({ held: 1, shunted: 1 });
    // The purged message's bytes go too.
    expect(db.prepare('SELECT count(*) AS n FROM spool_raw').get()).toEqual({ n: 2 });
  });
});
