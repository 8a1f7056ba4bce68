// The queue and bounce commands as an admin runs them: `embargo queue [--json]` (intake backlog and outbound queue), `queue retry`, `queue purge`, `bounces`, `bounces reset`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { migrations } from '../../src/schema.ts';
import { enqueueOutgoing, getOutbound, markDeferred, markFinal, markSentRows } from '../../src/queues/outbound.ts';
import { isSuspended } from '../../src/queues/bounce-scores.ts';
import { createSpool } from '../../src/queues/spool.ts';
import { makeTestConfig, type TestConfig } from '../helpers/daemon.ts';
import { runCli } from '../helpers/lists.ts';


let config: TestConfig;
let db: Db;
let ids: number[];

beforeAll(() => {
  config = makeTestConfig();
  db = openDatabase(config.dbFile, migrations);
  const now = Date.now();
  ids = enqueueOutgoing(db, {
    spoolId: 'cli-1',
    list: 'xen-security-issues-discuss',
    payload: Buffer.from('ciphertext'),
    copies: ['sent', 'failed', 'expired', 'deferred', 'queued'].map((name) => ({ recipient: `${name}@vendor.example`, head: Buffer.from('H') })),
  });
  markSentRows(db, [{ id: ids[0], reply: '250 2.0.0 Ok' }], now);
  markFinal(db, ids[1], 'failed', '550 5.1.1 <failed@vendor.example>: Recipient address rejected: User unknown', now);
  markFinal(db, ids[2], 'expired', 'expired after 7 attempts; last reply: 451 4.3.0 try later', now);
  markDeferred(db, ids[3], '421 4.3.2 Service shutting down', now + 3_600_000, now);
  db.prepare(
    `INSERT INTO member_bounces (list, address, score, scored_at, bounces_total, last_bounce_at, last_reason, suspended_at)
     VALUES ('xen-security-issues-discuss', 'gone@vendor.example', 5, ?, 5, ?, '5.1.1 550 User unknown', ?)`,
  ).run(now, now, now);
});

afterAll(() => {
  db?.close();
  config?.cleanup();
});

describe('embargo queue', () => {
  it('shows counts by state and the rows with recipient, state, attempts, next attempt and last reply', async () => {
    const text = await runCli(['queue', '--config', config.configDir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('queued: 1  sending: 0  deferred: 1  sent: 1  failed: 1  expired: 1  suspended: 0');
    expect(text.stdout).toMatch(new RegExp(`${ids[1]}\\s+failed\\s+0\\s+-\\s+xen-security-issues-discuss\\s+failed@vendor\\.example\\s+550 5\\.1\\.1`));
    expect(text.stdout).not.toContain('sent@vendor.example');

    const json = await runCli(['queue', '--json', '--include-sent', '--config', config.configDir]);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { counts: Record<string, number>; rows: Array<Record<string, unknown>> };
    expect(parsed.counts).toMatchObject({ sent: 1, failed: 1, expired: 1, deferred: 1, queued: 1 });
    expect(parsed.rows).toHaveLength(5);
    const deferred = parsed.rows.find((row) => row.recipient === 'deferred@vendor.example')!;
    expect(deferred).toMatchObject({ state: 'deferred', lastReply: '421 4.3.2 Service shutting down' });
    expect(Date.parse(deferred.nextAttemptAt as string)).toBeGreaterThan(Date.now() + 3_000_000);
  });

  it('shows the intake backlog: messages received and not yet processed, by source class, with the oldest one\'s age', async () => {
    const spool = createSpool(db, { now: () => Date.now() - 90_000 });
    const message = { rcptTo: ['xen-security-issues@lists.example.org'], remoteAddress: '192.0.2.7', helo: null, raw: Buffer.from('x') };
    const [flood] = spool.insertMany([
      { ...message, mailFrom: 'flood@outside.example' },
      { ...message, mailFrom: 'flood@outside.example' },
      { ...message, mailFrom: 'security@xenproject.example', sourceClass: 'poster' as const },
    ]);
    try {
      const text = await runCli(['queue', '--config', config.configDir]);
      expect(text.code).toBe(0);
      const line = /^intake backlog.*$/m.exec(text.stdout)?.[0] ?? '';
      expect(line, text.stdout).toMatch(/^intake backlog \(received, not yet processed\): 3 {2}poster: 1 \(oldest \d+ s\) {2}bounce: 0 {2}other: 2 \(oldest \d+ s\)$/);
      for (const age of line.matchAll(/oldest (\d+) s/g)) expect(Number(age[1])).toBeGreaterThanOrEqual(90);
      const json = JSON.parse((await runCli(['queue', '--json', '--config', config.configDir])).stdout) as { intake: Array<Record<string, unknown>> };
      expect(json.intake.map((entry) => [entry.sourceClass, entry.messages])).toEqual([['poster', 1], ['bounce', 0], ['other', 2]]);
      expect(Date.parse(json.intake[2].oldestReceivedAt as string)).toBeLessThan(Date.now() - 60_000);
    } finally {
      db.prepare(`DELETE FROM spool WHERE mail_from IN ('flood@outside.example', 'security@xenproject.example')`).run();
      expect(spool.get(flood)).toBeNull();
    }
  });

  it('retry ID requeues one dead letter, refuses delivered rows; retry --all requeues the rest', async () => {
    const one = await runCli(['queue', 'retry', String(ids[1]), '--config', config.configDir]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toContain(`requeued row ${ids[1]}`);
    expect(getOutbound(db, ids[1])!.state).toBe('queued');

    const sent = await runCli(['queue', 'retry', String(ids[0]), '--config', config.configDir]);
    expect(sent.code).toBe(1);
    expect(sent.stderr).toContain('already delivered');

    const all = await runCli(['queue', 'retry', '--all', '--config', config.configDir]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain('requeued 2 rows');
    expect(ids.slice(1).map((id) => getOutbound(db, id)!.state)).toEqual(['queued', 'queued', 'queued', 'queued']);
  });

  it('purge refuses without --yes-really, then deletes dead letters and delivered rows', async () => {
    markFinal(db, ids[1], 'failed', '550 again', Date.now());
    const refused = await runCli(['queue', 'purge', '--config', config.configDir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--yes-really');
    expect(getOutbound(db, ids[1])).not.toBeNull();

    const purged = await runCli(['queue', 'purge', '--yes-really', '--config', config.configDir]);
    expect(purged.code, purged.stderr).toBe(0);
    expect(purged.stdout).toContain('deleted 2 rows and 0 shared payloads');
    expect(getOutbound(db, ids[0])).toBeNull();
    expect(getOutbound(db, ids[1])).toBeNull();
    expect(getOutbound(db, ids[2])!.state).toBe('queued');
  });
});

describe('embargo bounces', () => {
  it('lists bounce scores and re-enables a suspended member with reset', async () => {
    const listed = await runCli(['bounces', '--config', config.configDir]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/xen-security-issues-discuss {2}gone@vendor\.example {2}score 5\.00 {2}bounces 5 {2}SUSPENDED since /);

    const reset = await runCli(['bounces', 'reset', 'xen-security-issues-discuss', 'Gone@vendor.example', '--config', config.configDir]);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toContain('re-enabled delivery to Gone@vendor.example on xen-security-issues-discuss');
    expect(isSuspended(db, 'xen-security-issues-discuss', 'gone@vendor.example')).toBe(false);

    const again = await runCli(['bounces', 'reset', 'xen-security-issues-discuss', 'gone@vendor.example', '--config', config.configDir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('no bounce record');
  });
});
