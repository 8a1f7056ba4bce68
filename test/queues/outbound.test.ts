// The outbound queue's rows, VERP tokens and the server secret, bounce reading and member scores, and the admin actions.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { migrations } from '../../src/schema.ts';
import {
  claimDueRows,
  cleanupOutbound,
  enqueueOutgoing,
  getOutbound,
  markDeferred,
  markFinal,
  markSentRows,
  purgeOutbound,
  queueCounts,
  retryAllOutbound,
  retryOutbound,
} from '../../src/queues/outbound.ts';
import { loadOrCreateServerSecret, parseVerpToken, verpAddress, verpToken } from '../../src/queues/verp.ts';
import { classifyBounce } from '../../src/lists/bounce-reading.ts';
import { handleBounce } from '../helpers/bounces.ts';
import { isSuspended, listBounceRecords, resetBounces } from '../../src/queues/bounce-scores.ts';
import { assessBounce } from '../../src/lists/bounce-assessment.ts';
import type { BounceInput, BounceOutcome } from '../../src/lists/bounce-assessment.ts';
import { resolveListAddress } from '../../src/lists/addresses.ts';
import { relayTestConfig } from '../helpers/relay.ts';

let dir: string;
let db: Db;
const secret = Buffer.alloc(32, 3);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'embargo-outbound-'));
  db = openDatabase(join(dir, 'embargo.sqlite'), migrations);
  db.exec(`CREATE TABLE IF NOT EXISTS test_inbound (id TEXT PRIMARY KEY, state TEXT)`);
});

afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function copy(recipient: string) {
  return { recipient, head: Buffer.from(`To: ${recipient}\r\n\r\n`), tail: Buffer.from('\r\n') };
}

const hour = 3_600_000;
const day = 24 * hour;

describe('enqueueOutgoing', () => {
  it('stores the payload once and one row per copy, inside the caller’s transaction, all or nothing', () => {
    db.prepare(`INSERT INTO test_inbound VALUES ('s1', 'processing')`).run();
    const fanOut = db.transaction(() => {
      const ids = enqueueOutgoing(db, { spoolId: 's1', list: 'sharing', payload: Buffer.from('PAYLOAD'), copies: [copy('a@x.example'), copy('b@x.example')] });
      db.prepare(`UPDATE test_inbound SET state = 'done' WHERE id = 's1'`).run();
      return ids;
    });
    const ids = fanOut();
    expect(ids).toHaveLength(2);
    expect(db.prepare('SELECT count(*) AS n FROM outbound_payload').get()).toEqual({ n: 1 });
    const row = db.prepare('SELECT * FROM outbound WHERE id = ?').get(ids[1]) as { recipient: string; state: string; spool_id: string; payload_id: number };
    expect(row).toMatchObject({ recipient: 'b@x.example', state: 'queued', spool_id: 's1' });

    // A failure after the enqueue rolls the fan-out back with the rest: no half-written queue.
    db.prepare(`INSERT INTO test_inbound VALUES ('s2', 'processing')`).run();
    const failing = db.transaction(() => {
      enqueueOutgoing(db, { spoolId: 's2', list: 'sharing', payload: Buffer.from('P2'), copies: [copy('c@x.example')] });
      throw new Error('pipeline bug');
    });
    expect(() => failing()).toThrow('pipeline bug');
    expect(db.prepare(`SELECT count(*) AS n FROM outbound WHERE spool_id = 's2'`).get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM outbound_payload').get()).toEqual({ n: 1 });
  });

  it('stores whole messages without a payload row', () => {
    const [id] = enqueueOutgoing(db, { spoolId: null, list: 'public', payload: null, copies: [copy('a@x.example')] });
    expect(getOutbound(db, id)).toMatchObject({ payloadId: null, state: 'queued', attempts: 0 });
  });
});

describe('claimDueRows', () => {
  it('claims due rows of both states, earliest due first, at most the limit, and leaves later and claimed ones', () => {
    const ids = enqueueOutgoing(db, {
      spoolId: null,
      list: 'xen-security-issues',
      payload: null,
      copies: ['a', 'b', 'c', 'd', 'e'].map((name) => ({ recipient: `${name}@member.example`, head: Buffer.from(name) })),
    }, 1_000);
    // a: queued, due 1000; b: deferred, due 500; c: deferred, due 5000 (later); d: queued, due 1000; e: deferred, due 800.
    markDeferred(db, ids[1], '451 later', 500, 900);
    markDeferred(db, ids[2], '451 later', 5_000, 900);
    markDeferred(db, ids[4], '451 later', 800, 900);
    const first = claimDueRows(db, 3, 2_000);
    expect(first.map((row) => row.recipient)).toEqual(['b@member.example', 'e@member.example', 'a@member.example']);
    expect(first.every((row) => row.state === 'sending')).toBe(true);
    expect(claimDueRows(db, 10, 2_000).map((row) => row.recipient)).toEqual(['d@member.example']);
    expect(claimDueRows(db, 10, 2_000)).toEqual([]);
    expect(claimDueRows(db, 10, 6_000).map((row) => row.recipient)).toEqual(['c@member.example']);
  });
});

describe('VERP', () => {
  it('round-trips a token through the address routing (which folds case) and refuses forgeries', () => {
    const token = verpToken(secret, 12345);
    expect(token).toMatch(/^12345-[0-9a-f]{20}$/);
    expect(parseVerpToken(secret, token)).toBe(12345);
    expect(parseVerpToken(secret, token.toUpperCase())).toBe(12345);

    const config = relayTestConfig({ host: '127.0.0.1', port: 25 }, { dataPath: dir });
    config.lists.set('sharing', { name: 'sharing', address: 'sharing@lists.example.org' } as never);
    const routed = resolveListAddress(config, verpAddress(secret, 'sharing', 'lists.example.org', 12345).toUpperCase());
    expect(routed?.role).toBe('bounces');
    expect(parseVerpToken(secret, routed!.token!)).toBe(12345);

    // Another row's MAC, a changed digit, another server's secret, junk: all refused.
    expect(parseVerpToken(secret, `12346-${token.split('-')[1]}`)).toBeNull();
    expect(parseVerpToken(secret, token.slice(0, -1) + (token.endsWith('0') ? '1' : '0'))).toBeNull();
    expect(parseVerpToken(Buffer.alloc(32, 4), token)).toBeNull();
    expect(parseVerpToken(secret, '12345')).toBeNull();
    expect(parseVerpToken(secret, `12345-${token.split('-')[1].slice(0, 10)}`)).toBeNull();
    expect(parseVerpToken(secret, '0-00')).toBeNull();
    expect(parseVerpToken(secret, '')).toBeNull();
  });

  it('creates the server secret once, 0600, and reads the same one afterwards', () => {
    const dataPath = join(dir, 'data');
    const first = loadOrCreateServerSecret(dataPath);
    expect(first).toHaveLength(32);
    expect(statSync(join(dataPath, 'secret')).mode & 0o777).toBe(0o600);
    expect(loadOrCreateServerSecret(dataPath).equals(first)).toBe(true);
    expect(readFileSync(join(dataPath, 'secret'), 'utf8').trim()).toBe(first.toString('hex'));
  });
});

function dsn(options: { action: string; status: string; diagnostic?: string; recipient?: string }): Buffer {
  return Buffer.from(
    [
      'From: MAILER-DAEMON@mx.example.net (Mail Delivery System)',
      'To: sharing-bounces+TOKEN@lists.example.org',
      'Subject: Undelivered Mail Returned to Sender',
      'Auto-Submitted: auto-replied',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status;',
      '\tboundary="B0UNDARY"',
      '',
      'This is a MIME-encapsulated message.',
      '',
      '--B0UNDARY',
      'Content-Description: Notification',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'This is the mail system at host mx.example.net.',
      '',
      '--B0UNDARY',
      'Content-Description: Delivery report',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.example.net',
      'Arrival-Date: Thu, 26 Nov 2026 10:00:00 +0000',
      '',
      `Final-Recipient: rfc822; ${options.recipient ?? 'member@vendor.example'}`,
      `Original-Recipient: rfc822;${options.recipient ?? 'member@vendor.example'}`,
      `Action: ${options.action}`,
      `Status: ${options.status}`,
      ...(options.diagnostic ? [`Diagnostic-Code: smtp; ${options.diagnostic}`] : []),
      '',
      '--B0UNDARY',
      'Content-Description: Undelivered Message Headers',
      'Content-Type: text/rfc822-headers',
      '',
      'Subject: [sharing] something',
      '',
      '--B0UNDARY--',
      '',
    ].join('\r\n'),
  );
}

const plainBounce = Buffer.from(
  [
    'From: Mail Delivery System <Mailer-Daemon@mx.example.net>',
    'To: sharing-bounces+TOKEN@lists.example.org',
    'Subject: Mail delivery failed: returning message to sender',
    'Auto-Submitted: auto-replied',
    '',
    'This message was created automatically by mail delivery software.',
    '',
    'A message that you sent could not be delivered to one or more of its',
    'recipients. This is a permanent error. The following address(es) failed:',
    '',
    '  member@vendor.example',
    '    host mx.vendor.example [192.0.2.1]',
    '    SMTP error from remote mail server after RCPT TO:<member@vendor.example>:',
    '    550 5.1.1 <member@vendor.example>: Recipient address rejected: User unknown',
    '',
  ].join('\n'),
);

const vacation = Buffer.from(
  ['From: member@vendor.example', 'Subject: Out of Office: [sharing] something', 'Auto-Submitted: auto-replied', '', 'I am away until Monday.', ''].join('\r\n'),
);

describe('reading bounces', () => {
  it('reads RFC 3464 reports and plain bounces', () => {
    expect(classifyBounce(dsn({ action: 'failed', status: '5.1.1', diagnostic: '550 5.1.1 <member@vendor.example>: User unknown' }))).toEqual({
      kind: 'dsn',
      verdict: 'failure',
      status: '5.1.1',
      diagnostic: '550 5.1.1 <member@vendor.example>: User unknown',
    });
    expect(classifyBounce(dsn({ action: 'delayed', status: '4.4.1' })).verdict).toBe('delay-warning');
    expect(classifyBounce(dsn({ action: 'delivered', status: '2.0.0' })).verdict).toBe('not-a-failure');
    expect(classifyBounce(plainBounce)).toMatchObject({ kind: 'plain', verdict: 'failure', status: '5.1.1' });
    expect(classifyBounce(vacation)).toMatchObject({ kind: 'plain', verdict: 'auto-reply' });
    expect(classifyBounce(Buffer.from('Subject: hello\r\n\r\nno idea what this is\r\n')).verdict).toBe('unknown');
    // Base64-encoded report part, LF line ends.
    const encoded = dsn({ action: 'failed', status: '5.2.2', diagnostic: '552 5.2.2 mailbox full' })
      .toString()
      .replace('Content-Type: message/delivery-status\r\n\r\n', 'Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n')
      .replace(/(Reporting-MTA[\s\S]*?)(\r\n--B0UNDARY\r\nContent-Description: Undelivered)/, (_all, report: string, rest: string) =>
        Buffer.from(report).toString('base64').replace(/(.{76})/g, '$1\r\n') + rest,
      )
      .replace(/\r\n/g, '\n');
    expect(classifyBounce(Buffer.from(encoded))).toMatchObject({ kind: 'dsn', verdict: 'failure', status: '5.2.2' });
  });
});

describe('member bounce scores', () => {
  function sentRow(recipient = 'Member@Vendor.example', list = 'sharing', spoolId: string | null = null): number {
    const [id] = enqueueOutgoing(db, { spoolId, list, payload: null, copies: [copy(recipient)] });
    markSentRows(db, [{ id, reply: '250 ok' }], Date.now());
    return id;
  }
  const oneDayDecay = Math.pow(0.5, 1 / 7);

  it('a DSN and a plain bounce for the member’s VERP address raise that member’s score, once a day', () => {
    const now = Date.UTC(2026, 10, 26);
    const first = handleBounce(db, { list: 'sharing', token: verpToken(secret, sentRow()), raw: dsn({ action: 'failed', status: '5.1.1', diagnostic: '550 5.1.1 User unknown' }), secret, now });
    expect(first).toMatchObject({ action: 'scored', kind: 'dsn', list: 'sharing', address: 'member@vendor.example', score: 1, suspended: false, notifyAdmins: false, status: '5.1.1' });
    // Another copy's bounce the same day does not count (Mailman: one score increment per day).
    const sameDay = handleBounce(db, { list: 'sharing', token: verpToken(secret, sentRow()), raw: plainBounce, secret, now: now + 23 * hour });
    expect(sameDay).toMatchObject({ action: 'ignore', reason: 'same-day' });
    const second = handleBounce(db, { list: 'sharing', token: verpToken(secret, sentRow()), raw: plainBounce, secret, now: now + day });
    expect(second).toMatchObject({ action: 'scored', kind: 'plain', notifyAdmins: false });
    expect(second.action === 'scored' && second.score).toBeCloseTo(1 + oneDayDecay, 6);
    expect(listBounceRecords(db, { list: 'sharing', now: now + day })).toMatchObject([{ address: 'member@vendor.example', bouncesTotal: 2, suspendedAt: null }]);
    expect(isSuspended(db, 'sharing', 'member@vendor.example')).toBe(false);
    // Other lists are not affected.
    expect(listBounceRecords(db, { list: 'other', now })).toEqual([]);
  });

  it('past the threshold the member is suspended once, admins are to be told, and pending copies are held back', () => {
    const now = Date.UTC(2026, 10, 26);
    const outcomes = [];
    // One bounce a day with a 7-day half-life: the score passes 5 on the seventh day.
    for (let index = 0; index < 7; index++) {
      outcomes.push(handleBounce(db, { list: 'sharing', token: verpToken(secret, sentRow()), raw: dsn({ action: 'failed', status: '5.1.1' }), secret, now: now + index * day }));
    }
    const [pending] = enqueueOutgoing(db, { spoolId: null, list: 'sharing', payload: null, copies: [copy('member@vendor.example')] });
    const last = outcomes.at(-1)!;
    expect(outcomes.slice(0, 6).every((outcome) => outcome.action === 'scored' && !outcome.suspended && !outcome.notifyAdmins)).toBe(true);
    expect(last).toMatchObject({ action: 'scored', suspended: true, notifyAdmins: true, threshold: 5 });
    expect(isSuspended(db, 'sharing', 'MEMBER@vendor.example')).toBe(true);
    expect(getOutbound(db, pending)!.state).toBe('suspended');
    // A further bounce does not tell the admins again.
    const again = handleBounce(db, { list: 'sharing', token: verpToken(secret, sentRow()), raw: plainBounce, secret, now: now + 8 * day });
    expect(again).toMatchObject({ action: 'scored', suspended: true, notifyAdmins: false });

    // The admin's re-enable clears it and may requeue what was held back.
    expect(resetBounces(db, 'sharing', 'member@vendor.example', { requeue: true, now: now + 8 * day })).toEqual({ found: true, wasSuspended: true, requeued: 1 });
    expect(isSuspended(db, 'sharing', 'member@vendor.example')).toBe(false);
    expect(getOutbound(db, pending)!.state).toBe('queued');
    expect(resetBounces(db, 'sharing', 'nobody@vendor.example')).toEqual({ found: false, wasSuspended: false, requeued: 0 });
  });

  it('needs bounces for two different posts to suspend, and never counts a token twice, even after a reset', () => {
    const now = Date.UTC(2026, 9, 1);
    const tokens: string[] = [];
    // Seven days of bounces, all for copies of one post: the score passes the threshold, the member stays.
    for (let index = 0; index < 7; index++) {
      const token = verpToken(secret, sentRow('member@vendor.example', 'sharing', 'ONE-POST'));
      tokens.push(token);
      expect(handleBounce(db, { list: 'sharing', token, raw: dsn({ action: 'failed', status: '5.1.1' }), secret, now: now + index * day })).toMatchObject({ action: 'scored', suspended: false });
    }
    expect(isSuspended(db, 'sharing', 'member@vendor.example')).toBe(false);
    // A bounce for a second post, a day later: now it is two posts, and the score is past 5.
    const other = handleBounce(db, { list: 'sharing', token: verpToken(secret, sentRow('member@vendor.example', 'sharing', 'OTHER-POST')), raw: plainBounce, secret, now: now + 7 * day });
    expect(other).toMatchObject({ action: 'scored', suspended: true, notifyAdmins: true });
    resetBounces(db, 'sharing', 'member@vendor.example', { now: now + 8 * day });
    // Old tokens, replayed days after the reset: none of them counts again.
    for (const [index, token] of tokens.entries()) {
      expect(handleBounce(db, { list: 'sharing', token, raw: plainBounce, secret, now: now + (9 + index) * day })).toMatchObject({ action: 'ignore', reason: 'duplicate' });
    }
    expect(listBounceRecords(db, { list: 'sharing' })).toEqual([]);
  });

  it('the score decays with a half-life of seven days', () => {
    const now = Date.UTC(2026, 10, 1);
    handleBounce(db, { list: 'sharing', token: verpToken(secret, sentRow()), raw: plainBounce, secret, now });
    handleBounce(db, { list: 'sharing', token: verpToken(secret, sentRow()), raw: plainBounce, secret, now: now + day });
    const twoBounces = 1 + oneDayDecay;
    expect(listBounceRecords(db, { now: now + 8 * day })[0].score).toBeCloseTo(twoBounces / 2, 6);
    // 14 quiet days after the second, 1 more: a quarter of it plus 1, far from suspension.
    const later = handleBounce(db, { list: 'sharing', token: verpToken(secret, sentRow()), raw: plainBounce, secret, now: now + 15 * day });
    expect(later).toMatchObject({ action: 'scored', suspended: false });
    expect(later.action === 'scored' && later.score).toBeCloseTo(twoBounces / 4 + 1, 6);
  });

  it('refuses forged tokens and other lists’ tokens, and ignores auto-replies, delay warnings and repeats', () => {
    const id = sentRow();
    const now = Date.now();
    const forged = `${id}-${'0'.repeat(20)}`;
    expect(handleBounce(db, { list: 'sharing', token: forged, raw: plainBounce, secret, now })).toEqual({ action: 'discard', reason: 'bad-token' });
    expect(handleBounce(db, { list: 'other', token: verpToken(secret, id), raw: plainBounce, secret, now })).toEqual({ action: 'discard', reason: 'wrong-list' });
    expect(handleBounce(db, { list: 'sharing', token: verpToken(secret, 999_999), raw: plainBounce, secret, now })).toEqual({ action: 'discard', reason: 'unknown-row' });
    expect(handleBounce(db, { list: 'sharing', token: verpToken(secret, id), raw: vacation, secret, now })).toMatchObject({ action: 'ignore', reason: 'auto-reply' });
    expect(handleBounce(db, { list: 'sharing', token: verpToken(secret, id), raw: dsn({ action: 'delayed', status: '4.4.1' }), secret, now })).toMatchObject({
      action: 'ignore',
      reason: 'delay-warning',
    });
    expect(handleBounce(db, { list: 'sharing', token: verpToken(secret, id), raw: plainBounce, secret, now })).toMatchObject({ action: 'scored', score: 1 });
    expect(handleBounce(db, { list: 'sharing', token: verpToken(secret, id), raw: dsn({ action: 'failed', status: '5.1.1' }), secret, now })).toMatchObject({
      action: 'ignore',
      reason: 'duplicate',
    });
    expect(listBounceRecords(db)[0].bouncesTotal).toBe(1);
  });
});

describe('admin actions on the queue', () => {
  it('retries one row or all dead letters, refuses sent and unknown rows, purges and cleans up', () => {
    const now = Date.now();
    const ids = enqueueOutgoing(db, {
      spoolId: null,
      list: 'sharing',
      payload: Buffer.from('P'),
      copies: ['a', 'b', 'c', 'd', 'e'].map((name) => copy(`${name}@x.example`)),
    }, now);
    markSentRows(db, [{ id: ids[0], reply: '250 ok' }], now);
    markFinal(db, ids[1], 'failed', '550 5.1.1 unknown', now);
    markFinal(db, ids[2], 'expired', 'expired after 9 attempts', now);
    markDeferred(db, ids[3], '451 later', now + hour, now);
    expect(queueCounts(db)).toMatchObject({ sent: 1, failed: 1, expired: 1, deferred: 1, queued: 1 });

    expect(retryOutbound(db, ids[0], now)).toBe('already-sent');
    expect(retryOutbound(db, 424242, now)).toBe('not-found');
    expect(retryOutbound(db, ids[4], now)).toBe('already-queued');
    expect(retryOutbound(db, ids[1], now + 1)).toBe('requeued');
    expect(getOutbound(db, ids[1])).toMatchObject({ state: 'queued', nextAttemptAt: now + 1, retriedAt: now + 1, lastReply: '550 5.1.1 unknown' });
    expect(retryAllOutbound(db, now + 2)).toBe(2); // the expired and the deferred row
    expect(queueCounts(db)).toMatchObject({ sent: 1, queued: 4 });

    markFinal(db, ids[1], 'failed', '550 again', now);
    // Only dead letters and sent rows go without --everything; the payload stays while a waiting row needs it.
    expect(purgeOutbound(db)).toEqual({ rows: 2, payloads: 0 });
    expect(queueCounts(db)).toMatchObject({ queued: 3, sent: 0, failed: 0 });
    expect(purgeOutbound(db, { everything: true })).toEqual({ rows: 3, payloads: 1 });

    const [old] = enqueueOutgoing(db, { spoolId: null, list: 'sharing', payload: Buffer.from('Q'), copies: [copy('z@x.example')] });
    markFinal(db, old, 'failed', '550', now - 100 * day);
    expect(cleanupOutbound(db, 90, now)).toBe(1);
    expect(db.prepare('SELECT count(*) AS n FROM outbound_payload').get()).toEqual({ n: 0 });
  });
});
