// The spool on a real SQLite file: ids sort by arrival, claims go oldest first, a crash's claims return to the queue.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createIdGenerator, createSpool } from '../../src/smtp/spool.ts';
import type { SpoolEntry } from '../../src/smtp/spool.ts';
import { openDatabase } from '../../src/store/database.ts';
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
    db = openDatabase(join(dir, 'embargo.sqlite'));
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
    db = openDatabase(join(dir, 'embargo.sqlite'));
    const reopened = createSpool(db);
    expect(reopened.resetProcessing()).toBe(1);
    expect(reopened.claimNext()).toMatchObject({ id, attempts: 2 });
  });

  it('writes nothing of a group whose transaction fails', () => {
    const spool = createSpool(db);
    db.exec(`CREATE TRIGGER refuse_bad BEFORE INSERT ON spool WHEN NEW.raw = CAST('bad' AS BLOB) BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    expect(() => spool.insertMany([entry('good'), entry('bad')])).toThrow(/refused/);
    expect(spool.countByState()).toEqual({});
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
  });
});
