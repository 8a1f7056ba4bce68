// Relay connections opened ahead of a fan-out: nodemailer's pool sends on them, stale or refused ones are never handed out.
import { createServer } from 'node:net';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { createRelayWarmer, type RelayWarmer } from '../../src/smtp/relay-warmer.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { startRelayPeer, type RelayPeer } from '../helpers/relay.ts';
import { SmtpClient } from '../helpers/smtp.ts';

let relay: RelayPeer | null = null;
let warmer: RelayWarmer | null = null;
let daemon: TestDaemon | null = null;

afterEach(async () => {
  await daemon?.stop();
  daemon = null;
  warmer?.close();
  warmer = null;
  await relay?.close();
  relay = null;
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function socketFrom(target: RelayWarmer): Promise<unknown> {
  return new Promise((resolve, reject) => target.getSocket({}, (error, socketOptions) => (error ? reject(error) : resolve(socketOptions))));
}

describe('relay warmer', () => {
  it('hands nodemailer a connection opened before the message, which the relay greeted meanwhile', async () => {
    relay = await startRelayPeer();
    warmer = createRelayWarmer({ host: relay.host, port: relay.port });
    warmer.warm(1);
    expect(warmer.size).toBe(1);
    // Past the relay's 100 ms greeting pause: the greeting waits in the socket's buffer.
    await pause(300);
    expect(relay.connections()).toBe(1);
    const transport = nodemailer.createTransport({ pool: true, host: relay.host, port: relay.port, maxConnections: 1, getSocket: warmer.getSocket });
    try {
      await transport.sendMail({ envelope: { from: 'list@lists.example.org', to: ['member@example.net'] }, raw: 'Subject: x\r\n\r\nhello\r\n' });
      // The message went over the warm connection: the relay saw no second one.
      expect(relay.connections()).toBe(1);
      expect(relay.messages.map((message) => message.to)).toEqual([['member@example.net']]);
      expect(warmer.size).toBe(0);
    } finally {
      transport.close();
    }
  });

  it('never hands out a connection older than its maximum age, nor one the relay refused', async () => {
    relay = await startRelayPeer();
    warmer = createRelayWarmer({ host: relay.host, port: relay.port }, { maxAgeMs: 100 });
    warmer.warm(2);
    await pause(400);
    expect(await socketFrom(warmer)).toBe(false);
    expect(warmer.size).toBe(0);

    // A port nobody listens on: the connection fails, is dropped, and nodemailer would connect (and fail) itself.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = createRelayWarmer({ host: '127.0.0.1', port });
    refused.warm(2);
    await pause(300);
    expect(refused.size).toBe(0);
    expect(await socketFrom(refused)).toBe(false);
    refused.close();
  });
});

describe('the daemon warms relay connections', () => {
  /** MAIL, RCPT and DATA, then part of the message: the transaction is open, the final dot not sent. */
  async function beginMessage(port: number, from: string): Promise<SmtpClient> {
    const client = await SmtpClient.connect(port);
    await client.ehlo();
    expect((await client.command(`MAIL FROM:<${from}>`)).code).toBe(250);
    expect((await client.command('RCPT TO:<xen-security-issues@lists.example.org>')).code).toBe(250);
    expect((await client.command('DATA')).code).toBe(354);
    client.write(`From: <${from}>\r\nTo: xen-security-issues@lists.example.org\r\nSubject: x\r\n\r\nThe first lines of a post`);
    return client;
  }

  it("while a registered poster's message is still arriving, and not for a stranger's", async () => {
    relay = await startRelayPeer();
    daemon = await startTestDaemon({ mode: 'child', relay: { host: relay.host, port: relay.port } });

    const stranger = await beginMessage(daemon.smtpPort, 'someone@elsewhere.example');
    await pause(1_000);
    expect(relay.connections()).toBe(0);
    stranger.destroy();

    const poster = await beginMessage(daemon.smtpPort, 'security@xenproject.example');
    // Before the message is complete (no 250 yet, nothing spooled): only the hint from intake can have opened them.
    await expect.poll(() => relay!.connections(), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(relay.messages).toEqual([]);
    poster.destroy();
  });
});
