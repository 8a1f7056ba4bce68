// Threat: a client trickles one byte at a time inside DATA, each byte resetting the idle timeout, to hold a connection forever.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { SmtpClient, makeMessage, sendMail } from '../helpers/smtp.ts';

const list = 'predisclosure-applications@lists.example.org';
const dataTimeoutSeconds = 3;
let daemon: TestDaemon;

beforeAll(async () => {
  daemon = await startTestDaemon({
    // The idle timeout is far longer than the deadline: only the overall DATA deadline can end the slow transaction.
    server: { smtp: { socketTimeoutSeconds: 60, dataTimeoutSeconds } },
    lists: { 'predisclosure-applications': { description: 'Applications', kind: 'public', archive: 'public', postsPerHourPerSender: 1000, members: [] } },
  });
});

afterAll(async () => {
  await daemon?.stop();
});

it(`cuts a slow-DATA client with 451 at smtp.dataTimeoutSeconds (${dataTimeoutSeconds} s), storing nothing, while a normal client keeps posting`, async () => {
  const slow = await SmtpClient.connect(daemon.smtpPort, '127.0.0.1', { timeoutMs: 60_000 });
  await slow.ehlo();
  expect((await slow.command('MAIL FROM:<trickle@outside.example>')).code).toBe(250);
  expect((await slow.command(`RCPT TO:<${list}>`)).code).toBe(250);
  expect((await slow.command('DATA')).code).toBe(354);
  // One byte every 200 ms, for up to 40 s: well inside the idle timeout each time.
  const text = `Subject: slow\r\n\r\n${'x'.repeat(200)}`;
  let sent = 0;
  const trickle = setInterval(() => {
    if (sent < text.length) slow.write(text[sent++]!);
  }, 200);
  try {
    // A normal client posts while the slow one holds its transaction open.
    const normal: number[] = [];
    for (let index = 0; index < 3; index++) {
      const result = await sendMail({ port: daemon.smtpPort, from: 'applicant@vendor-z.example', to: [list], raw: makeMessage({ from: 'applicant@vendor-z.example', to: list, subject: `application ${index}` }) });
      normal.push(result.code);
    }
    expect(normal).toEqual([250, 250, 250]);

    const reply = await slow.nextReply();
    expect(reply.code).toBe(451);
    expect(reply.text).toMatch(/not received in time/);
    // The connection is closed after the reply.
    expect((await slow.nextReply()).code).toBe(0);
    expect(slow.closed).toBe(true);
  } finally {
    clearInterval(trickle);
    slow.destroy();
  }
  const rows = daemon.daemon!.db.prepare("SELECT COUNT(*) AS count FROM spool WHERE mail_from = 'trickle@outside.example'").get() as { count: number };
  expect(rows.count).toBe(0);
  // And a normal client still posts after it.
  const after = await sendMail({ port: daemon.smtpPort, from: 'applicant@vendor-z.example', to: [list], raw: makeMessage({ from: 'applicant@vendor-z.example', to: list, subject: 'after' }) });
  expect(after.code).toBe(250);
}, 60_000);
