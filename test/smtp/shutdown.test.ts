// Graceful shutdown: new connections are refused, a transaction in flight still gets its 250 and its row, then the database closes.
import Database from 'better-sqlite3';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startTestDaemon } from '../helpers/daemon.ts';
import { SmtpClient, dotStuff, makeMessage } from '../helpers/smtp.ts';
import { asSent } from '../../src/queues/trace.ts';

const list = 'xen-security-issues@lists.example.org';

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('graceful shutdown', () => {
  it('finishes the transaction in flight, refuses new connections, closes idle ones and the database', async () => {
    const daemon = await startTestDaemon();
    try {
      const idle = await SmtpClient.connect(daemon.smtpPort);
      await idle.ehlo();
      const busy = await SmtpClient.connect(daemon.smtpPort);
      await busy.ehlo();
      await busy.command('MAIL FROM:<sender@example.net>');
      await busy.command(`RCPT TO:<${list}>`);
      expect((await busy.command('DATA')).code).toBe(354);
      const raw = makeMessage({ to: list, size: 4096 });
      const body = dotStuff(raw);
      busy.write(body.subarray(0, 1000));

      let stopped = false;
      const stopping = daemon.daemon!.stop().then(() => {
        stopped = true;
      });
      await expect.poll(() => connectionRefused(daemon.smtpPort)).toBe(true);
      expect(stopped).toBe(false);

      busy.write(body.subarray(1000));
      const reply = await busy.nextReply();
      expect(reply.code).toBe(250);
      const id = /queued as (\S+)/.exec(reply.text)![1];
      await stopping;
      expect(daemon.daemon!.db.open).toBe(false);
      // The idle connection was told why, then closed.
      const goodbye = await idle.nextReply();
      expect([421, 0]).toContain(goodbye.code);

      const db = new Database(daemon.config.dbFile, { readonly: true });
      const row = db.prepare('SELECT raw FROM spool WHERE id = ?').get(id) as { raw: Buffer } | undefined;
      db.close();
      expect(row && asSent(row.raw, id).toString()).toBe(raw);
      busy.destroy();
      idle.destroy();
    } finally {
      await daemon.stop();
    }
  });
});
