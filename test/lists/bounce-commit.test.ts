// A bounce's score is written in the worker's one commit with the admins' notice: a crash before that commit loses neither.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loader.ts';
import type { Config } from '../../src/config/types.ts';
import { ensureListKey } from '../../src/crypto/index.ts';
import type { DaemonContext } from '../../src/component.ts';
import type { MessageContext } from '../../src/lists/context.ts';
import { firstMailbox, headerValue, messageIdOf, splitMessage } from '../../src/lists/headers.ts';
import { handleBounceAddress } from '../../src/lists/roles/bounces.ts';
import { createPipelineWorker } from '../../src/lists/worker.ts';
import { isSuspended, listBounceRecords } from '../../src/queues/bounce-scores.ts';
import { enqueueOutgoing, markSentRows } from '../../src/queues/outbound.ts';
import { createSpool } from '../../src/queues/spool.ts';
import { loadOrCreateServerSecret, verpToken } from '../../src/queues/verp.ts';
import { openDatabase } from '../../src/store/database.ts';
import { migrations } from '../../src/schema.ts';
import { makeTestConfig, type TestConfig } from '../helpers/daemon.ts';

const domain = 'lists.example.org';
const member = 'reader@example.net';
const admin = 'postmaster@lists.example.org';
let testConfig: TestConfig;
let config: Config;

beforeAll(async () => {
  testConfig = makeTestConfig({
    removeLists: ['xen-security-issues', 'xen-security-issues-discuss', 'predisclosure-applications'],
    server: { admins: [admin] },
    lists: { open: { kind: 'public', archive: 'none', members: [{ email: member, roles: ['recipient'] }] } },
  });
  const loaded = await loadConfig(testConfig.configDir);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  config = loaded.config;
});

afterAll(() => testConfig?.cleanup());

function dsn(to: string): Buffer {
  return Buffer.from(
    [
      'From: MAILER-DAEMON@mx.example.net',
      `To: ${to}`,
      'Subject: Undelivered Mail Returned to Sender',
      'Auto-Submitted: auto-replied',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
      '',
      '--B',
      'Content-Type: text/plain',
      '',
      'Delivery failed.',
      '',
      '--B',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.example.net',
      '',
      `Final-Recipient: rfc822; ${member}`,
      'Action: failed',
      'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 User unknown',
      '',
      '--B--',
      '',
    ].join('\r\n'),
  );
}

describe('bounce scoring and the pipeline commit', () => {
  it('a crash after reading the bounce and before the commit: the retry still suspends the member and tells the admins', async () => {
    const db = openDatabase(`${testConfig.dataDir}/bounce-commit.sqlite`, migrations);
    const spool = createSpool(db);
    const listKey = ensureListKey({ dataDir: testConfig.dataDir, listName: 'open', domain });
    const list = config.lists.get('open')!;

    // Four bounces already, on earlier days and for another post: the next one crosses the threshold (5) and is the
    // one that tells the admins.
    const now = Date.now();
    db.prepare(
      `INSERT INTO member_bounces (list, address, score, scored_at, bounces_total, last_bounce_at, last_reason, suspended_at, last_row_id)
       VALUES ('open', ?, 4, ?, 4, ?, '5.1.1', NULL, NULL)`,
    ).run(member, now, now - 2 * 86_400_000);
    db.prepare(`INSERT INTO counted_bounces (row_id, list, address, spool_id, counted_at) VALUES (900000, 'open', ?, 'AN-EARLIER-POST', ?)`).run(member, now - 2 * 86_400_000);
    const [sentRow] = enqueueOutgoing(db, { spoolId: null, list: 'open', payload: null, copies: [{ recipient: member, head: Buffer.from(`To: ${member}\r\n\r\n`), tail: Buffer.from('\r\n') }] });
    markSentRows(db, [{ id: sentRow, reply: '250 ok' }], now);
    const secret = loadOrCreateServerSecret(config.server.dataPath);
    const token = verpToken(secret, sentRow);
    const address = `open-bounces+${token}@${domain}`;
    const raw = dsn(address);
    const spoolId = spool.insert({ mailFrom: '', rcptTo: [address], remoteAddress: '127.0.0.1', helo: 'mx.example.net', raw });

    // The first attempt: the worker claims the row and the -bounces role reads the bounce and builds the notice ...
    const claimed = spool.claimNext()!;
    expect(claimed.id).toBe(spoolId);
    const outer = splitMessage(raw);
    const context: MessageContext = {
      spoolId,
      receivedAt: new Date(claimed.receivedAt),
      config,
      list,
      raw,
      envelopeFrom: '',
      outer,
      from: firstMailbox(headerValue(outer.headers, 'From')),
      messageId: messageIdOf(headerValue(outer.headers, 'Message-ID')),
      approved: false,
      listKey: await listKey,
      outgoing: [],
      effects: [],
      services: { db, logger: pino({ level: 'silent' }), now: () => new Date(now), listKey: () => listKey },
    };
    const outcome = await handleBounceAddress(context, token, secret);
    expect(outcome.state).toBe('done');
    expect(context.outgoing.flatMap((mail) => mail.copies.map((copy) => copy.recipient))).toEqual([admin]);
    // ... and the process dies before the worker's commit: nothing of this attempt may be in the database.
    expect(listBounceRecords(db, { list: 'open', now })).toMatchObject([{ address: member, score: 4, bouncesTotal: 4, suspendedAt: null }]);
    expect(isSuspended(db, 'open', member)).toBe(false);

    // The restart puts the row back, and the worker handles it again from the start.
    expect(spool.resetProcessing()).toBe(1);
    const daemon: DaemonContext = {
      config: () => config,
      db,
      spool,
      logger: pino({ level: 'silent' }),
      listKey: () => listKey,
      onSpooled: () => undefined,
      onConfigReload: () => undefined,
      reportListening: () => undefined,
    };
    const worker = createPipelineWorker(daemon, { pollIntervalMs: 60_000, now: () => new Date(now) });
    await worker.start();
    await worker.drain();
    await worker.stop();

    expect(spool.get(spoolId)!.state).toBe('done');
    expect(isSuspended(db, 'open', member)).toBe(true);
    expect(listBounceRecords(db, { list: 'open', now })).toMatchObject([{ address: member, score: 5, bouncesTotal: 5 }]);
    const notices = db.prepare('SELECT recipient FROM outbound WHERE spool_id = ?').all(spoolId) as Array<{ recipient: string }>;
    expect(notices).toEqual([{ recipient: admin }]);
    db.close();
  });
});
