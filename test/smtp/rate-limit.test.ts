// Per-address rate limits over real SMTP: connections per minute (421), messages per minute (451), concurrent connections (421).
import { afterEach, describe, expect, it } from 'vitest';
import { startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { SmtpClient, makeMessage, sendMail } from '../helpers/smtp.ts';

const list = 'xen-security-issues@lists.example.org';

describe('smtp rate limits', () => {
  let daemon: TestDaemon | undefined;
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
  });

  const start = (rateLimit: Record<string, number>) => startTestDaemon({ server: { smtp: { rateLimit } } });

  it('refuses connections past connectionsPerMinute with 421 at connect', async () => {
    daemon = await start({ connectionsPerMinute: 3 });
    for (let index = 0; index < 3; index++) {
      const client = await SmtpClient.connect(daemon.smtpPort);
      expect(client.greeting.code).toBe(220);
      await client.quit();
    }
    const refused = await SmtpClient.connect(daemon.smtpPort);
    expect(refused.greeting.code).toBe(421);
    expect(refused.greeting.text).toMatch(/too many connections/);
    // The server hangs up after the 421.
    expect((await refused.nextReply()).code).toBe(0);
    refused.destroy();
  });

  it('refuses messages past messagesPerMinute with 451 at MAIL FROM, on the same or a new connection', async () => {
    daemon = await start({ messagesPerMinute: 2 });
    const client = await SmtpClient.connect(daemon.smtpPort);
    await client.ehlo();
    for (let index = 0; index < 2; index++) {
      const result = await sendMail({ port: daemon.smtpPort, client, from: 'a@example.net', to: [list], raw: makeMessage() });
      expect(result.code).toBe(250);
    }
    const third = await sendMail({ port: daemon.smtpPort, client, from: 'a@example.net', to: [list], raw: makeMessage() });
    expect(third).toMatchObject({ stage: 'mail', code: 451 });
    expect(third.text).toMatch(/^4\.7\.0 too many messages/);
    await client.quit();
    const again = await sendMail({ port: daemon.smtpPort, from: 'a@example.net', to: [list], raw: makeMessage() });
    expect(again).toMatchObject({ stage: 'mail', code: 451 });
  });

  it('refuses a connection past maxConcurrentConnections with 421, and accepts again once one closes', async () => {
    daemon = await start({ maxConcurrentConnections: 2 });
    const first = await SmtpClient.connect(daemon.smtpPort);
    const second = await SmtpClient.connect(daemon.smtpPort);
    expect([first.greeting.code, second.greeting.code]).toEqual([220, 220]);
    const third = await SmtpClient.connect(daemon.smtpPort);
    expect(third.greeting.code).toBe(421);
    third.destroy();
    await first.quit();
    // The close reaches the server asynchronously.
    await expect
      .poll(async () => {
        const next = await SmtpClient.connect(daemon!.smtpPort);
        const code = next.greeting.code;
        await next.quit().catch(() => undefined);
        return code;
      }, { timeout: 5_000, interval: 100 })
      .toBe(220);
    await second.quit();
  });
});
