// Invariant 5 at intake: a message acknowledged with 250 survives kill -9 of the daemon right after the reply.
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTestConfig, startTestDaemon } from '../helpers/daemon.ts';
import { SmtpClient, dotStuff, makeMessage } from '../helpers/smtp.ts';
import { asSent } from '../../src/queues/trace.ts';

const list = 'xen-security-issues@lists.example.org';

describe('durable accept', () => {
  const config = makeTestConfig();
  afterAll(() => config.cleanup());

  it('keeps a 250-acknowledged message across kill -9 and restart', async () => {
    const first = await startTestDaemon({ mode: 'child', config });
    const raw = makeMessage({ to: list, size: 10_240, messageId: '<crash-test@test.invalid>' });
    const client = await SmtpClient.connect(first.smtpPort);
    await client.ehlo();
    await client.command('MAIL FROM:<sender@example.net>');
    await client.command(`RCPT TO:<${list}>`);
    expect((await client.command('DATA')).code).toBe(354);
    // Kill in the same tick the 250 arrives, before anything else can run in the daemon.
    const killed = new Promise<string>((resolve) => {
      client.onRawData((text) => {
        if (text.startsWith('250')) {
          first.child!.kill('SIGKILL');
          resolve(text);
        }
      });
    });
    client.write(dotStuff(raw));
    const reply = await killed;
    const id = /queued as (\S+)/.exec(reply)![1];
    await first.kill('SIGKILL');
    expect(first.child!.signalCode).toBe('SIGKILL');
    client.destroy();

    const second = await startTestDaemon({ mode: 'child', config });
    try {
      const db = new Database(config.dbFile, { readonly: true });
      const row = db.prepare('SELECT raw, rcpt_to FROM spool WHERE id = ?').get(id) as { raw: Buffer; rcpt_to: string } | undefined;
      db.close();
      expect(row).toBeDefined();
      expect(asSent(row!.raw, id).toString()).toBe(raw);
      expect(JSON.parse(row!.rcpt_to)).toEqual([list]);
    } finally {
      await second.stop();
    }
  });
});
