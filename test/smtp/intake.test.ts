// SMTP intake over real loopback SMTP against the real daemon: who may be a recipient, size and recipient limits, durable 250.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Component } from '../../src/component.ts';
import { startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { SmtpClient, makeMessage, sendMail } from '../helpers/smtp.ts';
import { asSent } from '../../src/queues/trace.ts';

const domain = 'lists.example.org';
const list = `xen-security-issues@${domain}`;
const maxMessageBytes = 20_000;

describe('smtp intake', () => {
  let daemon: TestDaemon;
  const spooled: string[] = [];
  const probe = (context: { onSpooled(listener: (id: string) => void): void }): Component => ({
    name: 'spooled-probe',
    async start() {
      context.onSpooled((id) => spooled.push(id));
    },
    async stop() {},
  });

  beforeAll(async () => {
    daemon = await startTestDaemon({ server: { smtp: { maxMessageBytes, maxRecipients: 3 } }, components: [probe] });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  const send = (to: string[], raw = makeMessage({ to: to[0] }), extra: { mailParameters?: string; from?: string } = {}) =>
    sendMail({ port: daemon.smtpPort, from: extra.from ?? 'sender@example.net', to, raw, mailParameters: extra.mailParameters });

  it('greets, advertises SIZE, and offers neither AUTH nor STARTTLS without a certificate', async () => {
    const client = await SmtpClient.connect(daemon.smtpPort);
    expect(client.greeting.code).toBe(220);
    expect(client.greeting.text).toContain(domain);
    const ehlo = await client.ehlo();
    expect(ehlo.code).toBe(250);
    expect(ehlo.lines.map((line) => line.slice(4))).toContain(`SIZE ${maxMessageBytes}`);
    expect(ehlo.text).not.toMatch(/AUTH|STARTTLS/);
    expect((await client.command('AUTH PLAIN AGZvbwBiYXI=')).code).toBeGreaterThanOrEqual(500);
    await client.quit();
  });

  it('accepts a post with 250 naming the spool id, after the raw bytes are in the database', async () => {
    const raw = makeMessage({ to: list, subject: 'hello', body: 'Line one\r\n.leading dot survives\r\n' });
    const result = await send([list], raw);
    expect(result).toMatchObject({ ok: true, code: 250 });
    expect(result.text).toMatch(/^2\.0\.0 queued as [0-9A-Z]{15}$/);
    const id = result.spoolId!;
    // The pipeline's wake-up comes from the intake thread; it may trail the 250 by a moment.
    await expect.poll(() => spooled).toContain(id);
    // Read through a separate connection to the real file, as a crash-restarted daemon would.
    const db = new Database(daemon.config.dbFile, { readonly: true });
    const row = db.prepare('SELECT mail_from, rcpt_to, raw, state FROM spool WHERE id = ?').get(id) as {
      mail_from: string;
      rcpt_to: string;
      raw: Buffer;
      state: string;
    };
    db.close();
    expect(row.mail_from).toBe('sender@example.net');
    expect(JSON.parse(row.rcpt_to)).toEqual([list]);
    // Below our own Received field (next test), the bytes exactly as sent, dot-stuffing undone.
    expect(asSent(row.raw, id).toString()).toBe(raw);
  });

  it('puts a Received trace field (RFC 5321 4.4) on top of the stored message: EHLO name, address literal, our domain, protocol, spool id', async () => {
    const raw = makeMessage({ to: list, subject: 'traced' });
    const result = await send([list], raw);
    const id = result.spoolId!;
    const db = new Database(daemon.config.dbFile, { readonly: true });
    const row = db.prepare('SELECT raw FROM spool WHERE id = ?').get(id) as { raw: Buffer };
    db.close();
    const stored = row.raw.toString();
    const field = stored.slice(0, stored.length - raw.length);
    expect(field).toMatch(
      new RegExp(`^Received: from client\\.test\\.invalid \\(\\[127\\.0\\.0\\.1\\]\\)\r\n\tby ${domain.replace(/\./g, '\\.')} \\(Embargo\\) with ESMTP id ${id};\r\n\t[A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} \\+0000\r\n$`),
    );
    expect(stored.slice(field.length)).toBe(raw);
    // Exactly one Received field of ours: the pipeline's loop detection has nothing of ours to count.
    expect(stored.match(/^Received:/gm)).toHaveLength(1);
  });

  it('writes no header-breaking EHLO name into the Received field', async () => {
    const client = await SmtpClient.connect(daemon.smtpPort);
    await client.ehlo('bad(name)"x');
    const result = await sendMail({ port: daemon.smtpPort, client, from: 'sender@example.net', to: [list], raw: makeMessage({ to: list }) });
    const db = new Database(daemon.config.dbFile, { readonly: true });
    const row = db.prepare('SELECT raw FROM spool WHERE id = ?').get(result.spoolId) as { raw: Buffer };
    db.close();
    expect(row.raw.toString()).toMatch(/^Received: from unknown \(\[127\.0\.0\.1\]\)\r\n/);
    await client.quit();
  });

  it('accepts the -request, -owner, -sendkey and -bounces+TOKEN addresses of each list, in any letter case', async () => {
    for (const address of [
      `xen-security-issues-request@${domain}`,
      `xen-security-issues-owner@${domain}`,
      `xen-security-issues-sendkey@${domain}`,
      `xen-security-issues-bounces+abc123@${domain}`,
      `Predisclosure-Applications@LISTS.EXAMPLE.ORG`,
      `xen-security-issues-discuss@${domain}`,
    ]) {
      const result = await send([address]);
      expect(result, address).toMatchObject({ ok: true, code: 250 });
    }
  });

  it('refuses an unknown address at RCPT with 550 5.1.1', async () => {
    const result = await send([`nobody@${domain}`]);
    expect(result).toMatchObject({ ok: false, stage: 'rcpt', code: 550 });
    expect(result.text).toBe('5.1.1 no such list here');
  });

  it('is not an open relay: outside domains, %-hacks, quoted local parts and source routes get 550', async () => {
    for (const address of [
      'victim@outside.example',
      `xen-security-issues@${domain}.outside.example`,
      `victim%outside.example@${domain}`,
      `"xen-security-issues"@${domain}`,
      `xen-security-issues-request+token@${domain}`,
      `victim!outside.example@${domain}`,
    ]) {
      const result = await send([address]);
      expect(result, address).toMatchObject({ ok: false, stage: 'rcpt', code: 550 });
    }
    // Two @ signs are a syntax error (501) before our check; either way nothing is accepted.
    const quotedAt = await send([`"victim@outside.example"@${domain}`]);
    expect(quotedAt).toMatchObject({ ok: false, stage: 'rcpt' });
    expect([501, 550]).toContain(quotedAt.code);
    // RFC 5321 source route: the route is ignored, so the real recipient decides.
    const client = await SmtpClient.connect(daemon.smtpPort);
    await client.ehlo();
    expect((await client.command('MAIL FROM:<sender@example.net>')).code).toBe(250);
    const routed = await client.command(`RCPT TO:<@${domain}:victim@outside.example>`);
    expect(routed.code).toBe(550);
    await client.quit();
  });

  it('refuses a recipient past maxRecipients with 452 4.5.3 and keeps the earlier ones', async () => {
    const client = await SmtpClient.connect(daemon.smtpPort);
    await client.ehlo();
    await client.command('MAIL FROM:<sender@example.net>');
    for (const suffix of ['', '-request', '-owner']) {
      expect((await client.command(`RCPT TO:<xen-security-issues${suffix}@${domain}>`)).code).toBe(250);
    }
    const fourth = await client.command(`RCPT TO:<xen-security-issues-sendkey@${domain}>`);
    expect(fourth).toMatchObject({ code: 452, text: '4.5.3 too many recipients' });
    expect((await client.data(makeMessage({ to: list }))).code).toBe(250);
    await client.quit();
  });

  it('refuses an oversize message with 552 at MAIL FROM when SIZE is declared', async () => {
    const result = await send([list], makeMessage({ size: 100 }), { mailParameters: `SIZE=${maxMessageBytes + 1}` });
    expect(result).toMatchObject({ ok: false, stage: 'mail', code: 552 });
  });

  it('refuses an oversize message with a clean 552 after DATA when the client ignores SIZE, stores nothing, and the session goes on', async () => {
    const before = spooled.length;
    const client = await SmtpClient.connect(daemon.smtpPort);
    await client.ehlo();
    const big = await sendMail({ port: daemon.smtpPort, client, from: 'sender@example.net', to: [list], raw: makeMessage({ size: maxMessageBytes * 3 }) });
    expect(big).toMatchObject({ ok: false, stage: 'data', code: 552 });
    expect(big.text).toContain(`${maxMessageBytes} bytes`);
    const small = await sendMail({ port: daemon.smtpPort, client, from: 'sender@example.net', to: [list], raw: makeMessage({ size: 1000 }) });
    expect(small).toMatchObject({ ok: true, code: 250 });
    await client.quit();
    await expect.poll(() => spooled.length).toBe(before + 1);
  });

  it('answers 451 4.3.0 and writes nothing when the spool cannot store the message', async () => {
    const db = daemon.daemon!.db;
    const count = () => (db.prepare('SELECT COUNT(*) AS count FROM spool').get() as { count: number }).count;
    const before = count();
    // A real SQLite failure inside the insert transaction.
    db.exec(`CREATE TRIGGER test_refuse_store BEFORE INSERT ON spool_rows BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END`);
    try {
      const result = await send([list]);
      expect(result).toMatchObject({ ok: false, stage: 'data', code: 451, text: '4.3.0 temporarily unable to store message' });
      expect(count()).toBe(before);
    } finally {
      db.exec('DROP TRIGGER test_refuse_store');
    }
    expect((await send([list])).code).toBe(250);
  });

  it('applies a new list file live (hot reload), and keeps serving the old config after a bad edit', async () => {
    const newList = `hot-reloaded@${domain}`;
    expect((await send([newList])).code).toBe(550);
    writeFileSync(join(daemon.config.configDir, 'lists', 'hot-reloaded.yaml'), 'description: added while running\nkind: public\narchive: none\n');
    await expect.poll(async () => (await send([newList])).code, { timeout: 10_000, interval: 200 }).toBe(250);

    writeFileSync(join(daemon.config.configDir, 'lists', 'hot-reloaded.yaml'), 'kind: public\narchive: none\nnot_a_field: 1\n');
    await daemon.waitForLog((line) => line.msg === 'config change refused; still serving the last good config', 10_000);
    expect((await send([newList])).code).toBe(250);
    expect((await send([list])).code).toBe(250);
  });
});
