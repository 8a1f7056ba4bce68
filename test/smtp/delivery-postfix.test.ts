// Delivery through a REAL MTA: Debian's postfix on a loopback port as the relay, passing mail on to the relay peer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { migrations } from '../../src/schema.ts';
import { createLogger } from '../../src/util/log.ts';
import { createDelivery, type Delivery } from '../../src/smtp/delivery.ts';
import { enqueueOutgoing, getOutbound, type OutboundRow } from '../../src/queues/outbound.ts';
import { parseVerpToken } from '../../src/queues/verp.ts';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.ts';
import { relayTestConfig, startRelayPeer, type RelayPeer } from '../helpers/relay.ts';
import { skipWithoutRoot } from '../helpers/root.ts';

const secret = Buffer.alloc(32, 9);
const messageSizeLimit = 2_000_000;
const withoutRoot = skipWithoutRoot('postfix starts its master process as root, so this test');

let dir: string;
let postfixPort: number;
let db: Db;
let finalHop: RelayPeer;
let delivery: Delivery;

let postfix: PostfixInstance | null = null;
const maillog = () => postfix?.maillog() ?? '(no maillog)';

/** A private postfix instance (test/helpers/postfix.ts) relaying everything to the peer. */
async function startRelayPostfix(relayPort: number): Promise<void> {
  postfix = await startPostfix({
    mainCf: [
      'myhostname = relay.embargo-test.localdomain',
      'mydestination =',
      'mynetworks = 127.0.0.0/8',
      `relayhost = [127.0.0.1]:${relayPort}`,
      'local_recipient_maps =',
      `message_size_limit = ${messageSizeLimit}`,
      // Two recipients the relay refuses, the way a production MTA would: one for good, one for now.
      'smtpd_recipient_restrictions = check_recipient_access inline:{ {refused@example.net = 550 5.1.1 No such user here}, {busy@example.net = 450 4.2.1 Mailbox busy, try later} }, permit_mynetworks, reject',
      'smtpd_relay_restrictions = permit_mynetworks, reject',
    ],
  });
  postfixPort = postfix.port;
}

async function waitForRows(ids: number[], done: (row: OutboundRow) => boolean, timeoutMs = 30_000): Promise<OutboundRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = ids.map((id) => getOutbound(db, id)!);
    if (rows.every(done)) return rows;
    if (Date.now() > deadline) throw new Error(`rows not done: ${JSON.stringify(rows.map((row) => [row.recipient, row.state, row.lastReply]))}\n${maillog()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Postfix prepends its Received header; everything after it must be our bytes, unchanged. */
function withoutTraceHeaders(raw: Buffer): Buffer {
  let offset = 0;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', offset);
    const line = raw.subarray(offset, lineEnd).toString('latin1');
    if (!/^Received:/i.test(line) && !(offset > 0 && /^[ \t]/.test(line))) return raw.subarray(offset);
    offset = lineEnd + 2;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'embargo-delivery-postfix-'));
  db = openDatabase(join(dir, 'embargo.sqlite'), migrations);
  finalHop = await startRelayPeer();
  await startRelayPostfix(finalHop.port);
  const config = relayTestConfig({ host: '127.0.0.1', port: postfixPort }, { dataPath: dir, relay: { concurrency: 4, retrySchedule: [3600] } });
  delivery = createDelivery({ db, config: () => config, logger: createLogger('silent'), secret, timeouts: { socketMs: 20_000 } });
  await delivery.start();
}, 60_000);

afterAll(async () => {
  await delivery?.stop();
  await postfix?.stop();
  await finalHop?.close();
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(withoutRoot)('delivery through postfix', () => {
  it('passes a production MTA’s checks: dot-stuffing, 8-bit, 998-octet lines, big bodies arrive byte for byte; 5xx fail, 4xx defer', async () => {
    const headers = (recipient: string, index: number) =>
      Buffer.from(
        [
          'From: Sharing list <sharing@lists.example.org>',
          `To: ${recipient}`,
          'Date: Thu, 26 Nov 2026 12:00:00 +0000',
          `Message-ID: <postfix-${index}@lists.example.org>`,
          'Subject: [sharing] advisory',
          'MIME-Version: 1.0',
          'Content-Type: text/plain; charset=utf-8',
          'Content-Transfer-Encoding: 8bit',
          '',
          `Copy for ${recipient}`,
          '',
        ].join('\r\n'),
      );
    const tricky = [
      '.a line that starts with a dot',
      '.',
      '..two dots',
      'a lone dot line above; 8-bit below',
      'Grüße, Ελληνικά, 日本語 — ünïcödé',
      'x'.repeat(998),
      'From the start of a line (mbox would escape this; SMTP must not)',
      '',
    ].join('\r\n');
    const payload = Buffer.from(`${tricky}${'payload line of ciphertext-like text ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/\r\n'.repeat(4000)}.\r\nend\r\n`);
    const okRecipients = ['one@example.net', 'two@example.net', 'three@example.net'];
    const all = [...okRecipients, 'refused@example.net', 'busy@example.net'];
    const copies = all.map((recipient, index) => ({ recipient, head: headers(recipient, index), tail: Buffer.from(`-- \r\ntail ${index}\r\n`) }));
    const ids = enqueueOutgoing(db, { spoolId: 'postfix-1', list: 'sharing', payload, copies });

    // Too big for postfix's message_size_limit: refused for good after DATA.
    const [bigId] = enqueueOutgoing(db, {
      spoolId: 'postfix-2',
      list: 'sharing',
      payload: Buffer.from('y'.repeat(76).concat('\r\n').repeat(Math.ceil((messageSizeLimit * 1.2) / 78))),
      copies: [{ recipient: 'big@example.net', head: headers('big@example.net', 99) }],
    });
    delivery.kick();

    const rows = await waitForRows([...ids, bigId], (row) => row.state !== 'queued' && row.state !== 'sending');
    const byRecipient = new Map(rows.map((row) => [row.recipient, row]));
    for (const recipient of okRecipients) expect(byRecipient.get(recipient)!.state, recipient).toBe('sent');
    expect(byRecipient.get('one@example.net')!.lastReply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(byRecipient.get('refused@example.net')).toMatchObject({ state: 'failed' });
    expect(byRecipient.get('refused@example.net')!.lastReply).toContain('550 5.1.1');
    expect(byRecipient.get('refused@example.net')!.lastReply).toContain('No such user here');
    expect(byRecipient.get('busy@example.net')).toMatchObject({ state: 'deferred', attempts: 1 });
    expect(byRecipient.get('busy@example.net')!.lastReply).toContain('450 4.2.1');
    expect(byRecipient.get('big@example.net')).toMatchObject({ state: 'failed' });
    expect(byRecipient.get('big@example.net')!.lastReply).toMatch(/^552 5\.3\.4 /);

    // Postfix passes the accepted copies on to the next hop, with our VERP sender and our bytes.
    await finalHop.waitForMessages(okRecipients.length, 30_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${maillog()}`);
    });
    for (const [index, recipient] of all.entries()) {
      if (!okRecipients.includes(recipient)) continue;
      const received = finalHop.deliveredTo(recipient);
      expect(received, recipient).toHaveLength(1);
      const token = /^sharing-bounces\+([^@]+)@lists\.example\.org$/.exec(received[0].from)?.[1];
      expect(token && parseVerpToken(secret, token)).toBe(ids[index]);
      expect(received[0].raw.subarray(0, 9).toString()).toBe('Received:');
      const body = withoutTraceHeaders(received[0].raw);
      expect(body.equals(Buffer.concat([copies[index].head, payload, copies[index].tail])), recipient).toBe(true);
    }
    expect(finalHop.deliveredTo('refused@example.net')).toHaveLength(0);
    expect(finalHop.deliveredTo('big@example.net')).toHaveLength(0);
  });
});
