// Delivery against the fake relay peer: 4xx/5xx at MAIL, RCPT and DATA, dropped and stalled connections, retries, dead letters, restart.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { migrations } from '../../src/schema.ts';
import { createLogger } from '../../src/util/log.ts';
import { metrics } from '../../src/util/metrics.ts';
import { createDelivery, classifyDeliveryError, retryDelaySeconds, type Delivery } from '../../src/smtp/delivery.ts';
import { enqueueOutgoing, getOutbound, queueCounts, type OutboundRow } from '../../src/queues/outbound.ts';
import { parseVerpToken } from '../../src/queues/verp.ts';
import { relayTestConfig, startRelayPeer, type RelayCommand, type RelayPeer } from '../helpers/relay.ts';
import type { Config } from '../../src/config/types.ts';

const secret = Buffer.alloc(32, 7);
const logger = createLogger('silent');

let dir: string;
let db: Db;
let relay: RelayPeer;
let delivery: Delivery | null;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'embargo-delivery-'));
  db = openDatabase(join(dir, 'embargo.sqlite'), migrations);
  relay = await startRelayPeer();
  delivery = null;
});

afterEach(async () => {
  await delivery?.stop();
  await relay.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function start(config: Config, socketMs = 10_000): Delivery {
  delivery = createDelivery({ db, config: () => config, logger, secret, timeouts: { socketMs, greetingMs: socketMs, connectionMs: socketMs } });
  return delivery;
}

function copyFor(recipient: string, index = 0) {
  return {
    recipient,
    head: Buffer.from(`From: list@lists.example.org\r\nTo: ${recipient}\r\nMessage-ID: <m${index}@lists.example.org>\r\nSubject: test\r\n\r\n-----BEGIN HEAD ${recipient}-----\r\n`),
    tail: Buffer.from(`\r\n-----END ${index}-----\r\n`),
    messageId: `<m${index}@lists.example.org>`,
  };
}

/** Rows that have reached a state nothing moves them out of on its own. */
async function waitForFinal(ids: number[], timeoutMs = 30_000): Promise<OutboundRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = ids.map((id) => getOutbound(db, id)!);
    if (rows.every((row) => ['sent', 'failed', 'expired', 'suspended'].includes(row.state))) return rows;
    if (Date.now() > deadline) throw new Error(`not final: ${JSON.stringify(rows.map((row) => [row.id, row.state, row.lastReply]))}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function rowIdOf(from: string): number | null {
  const match = /\+([^@]+)@/.exec(from);
  return match ? parseVerpToken(secret, match[1]) : null;
}

describe('classification', () => {
  it('defers 4xx, network errors and timeouts; fails 5xx at MAIL, RCPT and DATA; defers 5xx while connecting', () => {
    expect(classifyDeliveryError({ responseCode: 451, response: '451 4.3.0 later', command: 'RCPT TO' }).outcome).toBe('defer');
    expect(classifyDeliveryError({ code: 'ETIMEDOUT', message: 'Timeout', command: 'CONN' }).outcome).toBe('defer');
    expect(classifyDeliveryError({ code: 'ECONNECTION', message: 'Connection closed unexpectedly' }).outcome).toBe('defer');
    expect(classifyDeliveryError({ responseCode: 550, response: '550 5.1.1 no', command: 'RCPT TO' })).toEqual({ outcome: 'fail', reply: '550 5.1.1 no' });
    expect(classifyDeliveryError({ responseCode: 552, response: '552 too big', command: 'DATA' }).outcome).toBe('fail');
    expect(classifyDeliveryError({ responseCode: 553, response: '553 sender', command: 'MAIL FROM' }).outcome).toBe('fail');
    expect(classifyDeliveryError({ code: 'EAUTH', responseCode: 535, response: '535 bad password', command: 'AUTH PLAIN' }).outcome).toBe('defer');
    expect(retryDelaySeconds([60, 300, 900], 1)).toBe(60);
    expect(retryDelaySeconds([60, 300, 900], 3)).toBe(900);
    expect(retryDelaySeconds([60, 300, 900], 9)).toBe(900);
  });
});

describe('delivery to the relay peer', () => {
  it('sends each copy byte for byte with its own VERP envelope sender, pooled and bounded', async () => {
    const config = relayTestConfig(relay, { dataPath: dir, relay: { concurrency: 3 } });
    const payload = Buffer.from('shared payload line 1\r\n.dot-led line must be stuffed on the wire\r\n8-bit: \xe9\xe8\r\n'.repeat(50), 'latin1');
    const copies = Array.from({ length: 12 }, (_, index) => copyFor(`member${index}@example.net`, index));
    const ids = enqueueOutgoing(db, { spoolId: 'spool-1', list: 'sharing', payload, copies });
    const before = metrics.value('embargo_delivered_total');
    start(config);
    await delivery!.start();
    const rows = await waitForFinal(ids);
    expect(rows.map((row) => row.state)).toEqual(ids.map(() => 'sent'));
    expect(relay.messages).toHaveLength(12);
    for (const [index, id] of ids.entries()) {
      const [message] = relay.deliveredTo(`member${index}@example.net`);
      expect(message.to).toEqual([`member${index}@example.net`]);
      expect(message.from).toMatch(/^sharing-bounces\+\d+-[0-9a-f]{20}@lists\.example\.org$/);
      expect(rowIdOf(message.from)).toBe(id);
      expect(message.raw.equals(Buffer.concat([copies[index].head, payload, copies[index].tail]))).toBe(true);
    }
    expect(rows[0].lastReply).toMatch(/^250 /);
    expect(metrics.value('embargo_delivered_total') - before).toBe(12);
    // Sent rows let go of their content and the payload is gone.
    expect(db.prepare('SELECT count(*) AS n FROM outbound_payload').get()).toEqual({ n: 0 });
    expect(db.prepare(`SELECT count(*) AS n FROM outbound WHERE length(head) > 0`).get()).toEqual({ n: 0 });
    // Pooled: fewer connections than messages, never more than the concurrency.
    expect(relay.connections()).toBeLessThanOrEqual(3);
    expect(metrics.render()).toMatch(/embargo_queue_depth\{state="sent"\} 12/);
  });

  const commands: RelayCommand[] = ['MAIL', 'RCPT', 'DATA'];
  const codes = [421, 450, 451, 550, 552];

  it('defers 421/450/451 and fails 550/552 at MAIL, RCPT and DATA; deferred rows retry and deliver, failures keep the reply', async () => {
    const config = relayTestConfig(relay, { dataPath: dir, relay: { concurrency: 4, retrySchedule: [1] } });
    const cases = commands.flatMap((command) => codes.map((code) => ({ command, code, recipient: `c${code}-${command.toLowerCase()}@example.net` })));
    const ids = enqueueOutgoing(db, {
      spoolId: 'spool-2',
      list: 'sharing',
      payload: Buffer.from('payload\r\n'),
      copies: cases.map((testCase, index) => copyFor(testCase.recipient, index)),
    });
    for (const [index, testCase] of cases.entries()) {
      const id = ids[index];
      relay.inject({
        at: testCase.command,
        action: 'reply',
        code: testCase.code,
        message: `${testCase.code >= 500 ? '5' : '4'}.0.0 injected ${testCase.code} at ${testCase.command} for row ${id}`,
        // A temporary failure happens once; a permanent one would happen every time.
        times: testCase.code >= 500 ? Infinity : 1,
        match: (envelope) => rowIdOf(envelope.from) === id,
      });
    }
    const deferredBefore = metrics.value('embargo_deferred_total');
    const failedBefore = metrics.value('embargo_failed_total');
    start(config);
    await delivery!.start();
    const rows = await waitForFinal(ids);
    for (const [index, testCase] of cases.entries()) {
      const row = rows[index];
      const context = `${testCase.code} at ${testCase.command}: ${row.state} ${row.lastReply}`;
      if (testCase.code < 500) {
        expect(row.state, context).toBe('sent');
        expect(row.attempts, context).toBe(2);
        expect(relay.deliveredTo(testCase.recipient), context).toHaveLength(1);
      } else {
        expect(row.state, context).toBe('failed');
        expect(row.attempts, context).toBe(1);
        expect(row.lastReply, context).toContain(`${testCase.code} `);
        expect(row.lastReply, context).toContain(`injected ${testCase.code} at ${testCase.command} for row ${row.id}`);
        expect(relay.deliveredTo(testCase.recipient), context).toHaveLength(0);
      }
    }
    expect(relay.fired).toHaveLength(cases.length);
    expect(metrics.value('embargo_deferred_total') - deferredBefore).toBe(9);
    expect(metrics.value('embargo_failed_total') - failedBefore).toBe(6);
    // Dead letters keep their content (so an admin can retry) and the payload they need.
    expect(db.prepare('SELECT count(*) AS n FROM outbound_payload').get()).toEqual({ n: 1 });
    expect(queueCounts(db)).toMatchObject({ sent: 9, failed: 6, queued: 0, deferred: 0, sending: 0 });
  });

  it('defers a deferred row with the relay reply and the next attempt time per the schedule', async () => {
    const config = relayTestConfig(relay, { dataPath: dir, relay: { retrySchedule: [3600] } });
    const [id] = enqueueOutgoing(db, { spoolId: null, list: 'sharing', payload: null, copies: [copyFor('later@example.net')] });
    relay.inject({ at: 'RCPT', action: 'reply', code: 450, message: '4.2.1 Mailbox busy', times: Infinity });
    start(config);
    const before = Date.now();
    await delivery!.start();
    await delivery!.whenIdle();
    const row = getOutbound(db, id)!;
    expect(row.state).toBe('deferred');
    expect(row.attempts).toBe(1);
    expect(row.lastReply).toBe('450 4.2.1 Mailbox busy');
    expect(row.nextAttemptAt).toBeGreaterThanOrEqual(before + 3600_000);
    expect(row.nextAttemptAt).toBeLessThan(Date.now() + 3600_000 + 1000);
  });

  it('retries after dropped connections at CONNECT, MAIL, RCPT and DATA, and loses nothing', async () => {
    const config = relayTestConfig(relay, { dataPath: dir, relay: { concurrency: 2, retrySchedule: [1] } });
    const targets: Array<RelayCommand> = ['CONNECT', 'MAIL', 'RCPT', 'DATA'];
    const ids = enqueueOutgoing(db, {
      spoolId: 'spool-3',
      list: 'sharing',
      payload: Buffer.from('x'.repeat(10_000)),
      copies: Array.from({ length: 8 }, (_, index) => copyFor(`drop${index}@example.net`, index)),
    });
    for (const at of targets) relay.inject({ at, action: 'drop', times: 1 });
    start(config);
    await delivery!.start();
    const rows = await waitForFinal(ids);
    expect(rows.map((row) => row.state)).toEqual(ids.map(() => 'sent'));
    expect(relay.fired.map((entry) => entry.fault.at).sort()).toEqual([...targets].sort());
    // At least the rows that were on a dropped connection took a second attempt; every recipient got its copy once.
    expect(rows.filter((row) => row.attempts > 1).length).toBeGreaterThanOrEqual(3);
    for (let index = 0; index < 8; index++) expect(relay.deliveredTo(`drop${index}@example.net`)).toHaveLength(1);
    expect(rows.some((row) => /ECONNECTION|closed/i.test(row.lastReply ?? ''))).toBe(false); // sent rows carry the 250
  });

  it('times out a stalled relay at the greeting, MAIL, RCPT and DATA, defers, and delivers on the next attempt', async () => {
    const config = relayTestConfig(relay, { dataPath: dir, relay: { concurrency: 4, retrySchedule: [1] } });
    const commands = ['MAIL', 'RCPT', 'DATA'] as const;
    const ids = enqueueOutgoing(db, {
      spoolId: 'spool-4',
      list: 'sharing',
      payload: Buffer.from('stall payload\r\n'),
      copies: commands.map((command, index) => copyFor(`stall-${command.toLowerCase()}@example.net`, index)),
    });
    for (const [index, at] of commands.entries()) {
      relay.inject({ at, action: 'stall', times: 1, match: (envelope) => rowIdOf(envelope.from) === ids[index] });
    }
    // The first connection never gets its 220 greeting.
    relay.inject({ at: 'CONNECT', action: 'stall', times: 1 });
    start(config, 1_000);
    await delivery!.start();
    const rows = await waitForFinal(ids);
    expect(rows.map((row) => row.state)).toEqual(ids.map(() => 'sent'));
    expect(rows.every((row) => row.attempts >= 2)).toBe(true);
    expect(relay.fired.map((entry) => entry.fault.at).sort()).toEqual(['CONNECT', 'DATA', 'MAIL', 'RCPT']);
    expect(relay.messages).toHaveLength(3);
  });

  it('expires rows that stay undeliverable past the maximum age', async () => {
    // 1 ms of maximum age: the first deferral is already too old.
    const config = relayTestConfig(relay, { dataPath: dir, relay: { maxAgeHours: 1 / 3_600_000, retrySchedule: [1] } });
    const [id] = enqueueOutgoing(db, { spoolId: null, list: 'sharing', payload: null, copies: [copyFor('old@example.net')] });
    relay.inject({ at: 'RCPT', action: 'reply', code: 451, message: '4.3.0 try later', times: Infinity });
    await new Promise((resolve) => setTimeout(resolve, 5));
    start(config);
    await delivery!.start();
    const [row] = await waitForFinal([id]);
    expect(row.state).toBe('expired');
    expect(row.lastReply).toContain('451 4.3.0 try later');
  });

  it('after a crash, rows left in sending are sent again at start (at-least-once)', async () => {
    const config = relayTestConfig(relay, { dataPath: dir });
    const ids = enqueueOutgoing(db, { spoolId: null, list: 'sharing', payload: Buffer.from('p'), copies: [copyFor('a@example.net'), copyFor('b@example.net', 1)] });
    // What a kill -9 in the middle of an attempt leaves behind.
    db.prepare(`UPDATE outbound SET state = 'sending', attempts = 1 WHERE id = ?`).run(ids[0]);
    start(config);
    await delivery!.start();
    const rows = await waitForFinal(ids);
    expect(rows.map((row) => row.state)).toEqual(['sent', 'sent']);
    expect(rows[0].attempts).toBe(2);
    expect(relay.messages).toHaveLength(2);
  });

  it('wakes on kick() for rows enqueued while running, and stop() ends cleanly', async () => {
    const config = relayTestConfig(relay, { dataPath: dir });
    start(config);
    await delivery!.start();
    await delivery!.whenIdle();
    const ids = enqueueOutgoing(db, { spoolId: null, list: 'sharing', payload: null, copies: [copyFor('kick@example.net')] });
    const kicked = Date.now();
    delivery!.kick();
    await waitForFinal(ids, 5_000);
    expect(Date.now() - kicked).toBeLessThan(2_000);
    await delivery!.stop();
    delivery = null;
  });

  it('authenticates to the relay; a wrong password defers (setup problem) instead of failing the copies', async () => {
    const authRelay = await startRelayPeer({ auth: { user: 'embargo', pass: 'right' } });
    try {
      let config = relayTestConfig(authRelay, { dataPath: dir, relay: { auth: { user: 'embargo', pass: 'wrong' }, retrySchedule: [1] } });
      delivery = createDelivery({ db, config: () => config, logger, secret, timeouts: { socketMs: 5_000 } });
      const [id] = enqueueOutgoing(db, { spoolId: null, list: 'sharing', payload: null, copies: [copyFor('auth@example.net')] });
      await delivery.start();
      await delivery.whenIdle();
      const deferred = getOutbound(db, id)!;
      expect(deferred.state).toBe('deferred');
      expect(deferred.lastReply).toMatch(/535 5\.7\.8/);
      // The admin fixes the password (a hot reload); the next attempt uses a new connection with it.
      config = relayTestConfig(authRelay, { dataPath: dir, relay: { auth: { user: 'embargo', pass: 'right' }, retrySchedule: [1] } });
      const [row] = await waitForFinal([id]);
      expect(row.state).toBe('sent');
      expect(authRelay.deliveredTo('auth@example.net')).toHaveLength(1);
    } finally {
      await delivery?.stop();
      delivery = null;
      await authRelay.close();
    }
  });

  it('follows a relay change on config reload', async () => {
    const second = await startRelayPeer();
    try {
      let config = relayTestConfig(relay, { dataPath: dir });
      delivery = createDelivery({ db, config: () => config, logger, secret });
      await delivery.start();
      enqueueOutgoing(db, { spoolId: null, list: 'sharing', payload: null, copies: [copyFor('first@example.net')] });
      await relay.waitForMessages(1);
      config = relayTestConfig(second, { dataPath: dir });
      const ids = enqueueOutgoing(db, { spoolId: null, list: 'sharing', payload: null, copies: [copyFor('second@example.net', 1)] });
      await waitForFinal(ids);
      expect(second.deliveredTo('second@example.net')).toHaveLength(1);
      expect(relay.deliveredTo('second@example.net')).toHaveLength(0);
    } finally {
      await delivery?.stop();
      delivery = null;
      await second.close();
    }
  });

  it('marks copies to a suspended member as suspended instead of sending them', async () => {
    const config = relayTestConfig(relay, { dataPath: dir });
    db.prepare(`INSERT INTO member_bounces (list, address, score, scored_at, suspended_at) VALUES ('sharing', 'gone@example.net', 6, ?, ?)`).run(Date.now(), Date.now());
    const ids = enqueueOutgoing(db, { spoolId: null, list: 'sharing', payload: null, copies: [copyFor('Gone@Example.net'), copyFor('here@example.net', 1)] });
    start(config);
    await delivery!.start();
    const rows = await waitForFinal(ids);
    expect(rows.map((row) => row.state)).toEqual(['suspended', 'sent']);
    expect(relay.deliveredTo('gone@example.net')).toHaveLength(0);
  });
});
