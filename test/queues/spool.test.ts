// The spool on a real SQLite file: ids sort by arrival, claims go fairly across sources, a crash's claims return to the queue.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createIdGenerator, createSpool } from '../../src/queues/spool.ts';
import type { SpoolEntry } from '../../src/queues/spool.ts';
import Database from 'better-sqlite3';
import { spoolMigrations } from '../../src/queues/spool-schema.ts';
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

    expect(spool.claimNext()).toMatchObject({ id: first, state: 'processing', attempts: 0 });
    expect(spool.claimNext()?.id).toBe(second);
    expect(spool.markState(first, 'done', { outcome: 'accept', list: 'xen-security-issues' })).toBe(true);
    expect(spool.get(first)).toMatchObject({ state: 'done', outcome: 'accept', list: 'xen-security-issues' });
    expect(spool.countByState()).toEqual({ done: 1, processing: 1, queued: 1 });
    expect(spool.claimNext()?.id).toBe(third);
    expect(spool.claimNext()).toBeNull();
  });

  it('puts messages left in processing by a crash back in the queue, with the attempts whose handling began', () => {
    const spool = createSpool(db);
    const id = spool.insert(entry('crash'));
    spool.claimNext();
    expect(spool.startAttempt(id)).toBe(1);
    db.close();
    db = openDatabase(join(dir, 'embargo.sqlite'), migrations);
    const reopened = createSpool(db);
    expect(reopened.resetProcessing()).toBe(1);
    expect(reopened.claimNext()).toMatchObject({ id, attempts: 1 });
    expect(reopened.startAttempt(id)).toBe(2);
  });

  it('charges no attempt to messages that were only claimed ahead when the process died, however often', () => {
    // The worker claims up to 8 messages ahead of their turn; four crashes while they wait are none of their doing.
    let spool = createSpool(db);
    const ids = spool.insertMany([entry('a'), entry('b'), entry('c')]);
    for (let crash = 0; crash < 4; crash++) {
      expect([spool.claimNext()?.id, spool.claimNext()?.id, spool.claimNext()?.id]).toEqual(ids);
      db.close();
      db = openDatabase(join(dir, 'embargo.sqlite'), migrations);
      spool = createSpool(db);
      expect(spool.resetProcessing()).toBe(3);
    }
    expect(ids.map((id) => spool.get(id)!.attempts)).toEqual([0, 0, 0]);
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
    // Two small row updates: the row's page and a page of each index on state in the WAL, not the 25 overflow pages
    // of the message twice.
    const walFrames = (db.prepare('PRAGMA wal_checkpoint(PASSIVE)').get() as { log: number }).log;
    expect(walFrames).toBeLessThan(16);
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
    expect(spool.claimNext()).toMatchObject({ id: 'OLD1', raw: Buffer.from('ABC'), state: 'processing', attempts: 0 });
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

  it('serves sources in turns: a newcomer waits for one round, not behind another source\'s backlog', () => {
    const spool = createSpool(db);
    const from = (remoteAddress: string, mailFrom: string, text: string, sourceClass?: SpoolEntry['sourceClass']): SpoolEntry => ({
      ...entry(text),
      remoteAddress,
      mailFrom,
      sourceClass,
    });
    const flood = spool.insertMany(Array.from({ length: 6 }, (_, index) => from('192.0.2.9', 'flood@bad.example', `flood ${index}`)));
    // The same address with another envelope sender is another source; so is another address with the same sender.
    const other = spool.insert(from('192.0.2.9', 'other@bad.example', 'other'));
    expect(spool.claimNext()?.id).toBe(flood[0]);
    expect(spool.claimNext()?.id).toBe(other);
    expect(spool.claimNext()?.id).toBe(flood[1]);
    // A newcomer joins the current round (turn 2): after its peers of that round, before the flood's later rows.
    const team = spool.insert(from('198.51.100.7', 'security@xenproject.example', 'advisory'));
    expect(spool.claimNext()?.id).toBe(flood[2]);
    expect(spool.claimNext()?.id).toBe(team);
    // A source's own rows stay in arrival order.
    expect([spool.claimNext()?.id, spool.claimNext()?.id, spool.claimNext()?.id, spool.claimNext()]).toEqual([flood[3], flood[4], flood[5], null]);
  });

  it('serves a registered poster first within a turn: a hint that reorders a round, never a source\'s backlog', () => {
    const spool = createSpool(db);
    const [a, b] = spool.insertMany([
      { ...entry('a'), remoteAddress: '192.0.2.1', mailFrom: 'a@example.net' },
      { ...entry('b'), remoteAddress: '192.0.2.2', mailFrom: 'b@example.net' },
    ]);
    // Claiming advances nothing here: all three rows are in turn 0, and the poster's goes first.
    const [poster, posterAgain] = spool.insertMany([
      { ...entry('p'), remoteAddress: '192.0.2.3', mailFrom: 'security@xenproject.example', sourceClass: 'poster' },
      { ...entry('p2'), remoteAddress: '192.0.2.3', mailFrom: 'security@xenproject.example', sourceClass: 'poster' },
    ]);
    expect(spool.get(poster)?.sourceClass).toBe('poster');
    expect(spool.claimNext()?.id).toBe(poster);
    // Its second message is in turn 1: the hint does not let it pass the others' turn-0 mail.
    expect([spool.claimNext()?.id, spool.claimNext()?.id, spool.claimNext()?.id]).toEqual([a, b, posterAgain]);
  });

  it('counts the backlog per client address and in all, and by source class with the oldest arrival', () => {
    let clock = 5_000;
    const spool = createSpool(db, { now: () => clock });
    const ids = spool.insertMany([entry('1'), entry('2'), { ...entry('3'), remoteAddress: '192.0.2.1', sourceClass: 'bounce', mailFrom: '' }]);
    clock = 6_000;
    spool.insert({ ...entry('4'), sourceClass: 'poster' });
    spool.claimNext();
    spool.markState(ids[1], 'done');
    expect(spool.backlog('127.0.0.1')).toEqual({ fromAddress: 2, total: 3 });
    expect(spool.backlog('192.0.2.1')).toEqual({ fromAddress: 1, total: 3 });
    expect(spool.backlog(null)).toEqual({ fromAddress: 0, total: 3 });
    expect(spool.backlogByClass()).toEqual([
      { sourceClass: 'poster', messages: 1, oldestReceivedAt: 6_000 },
      { sourceClass: 'bounce', messages: 1, oldestReceivedAt: 5_000 },
      { sourceClass: 'other', messages: 1, oldestReceivedAt: 5_000 },
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
