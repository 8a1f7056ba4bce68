// Threats at SMTP: using the list server as an open relay, and starving other clients (slow senders, pipelining and connection floods, huge command lines).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { SmtpClient, makeMessage, sendMail } from '../helpers/smtp.ts';

const domain = 'lists.example.org';
const list = `predisclosure-applications@${domain}`;
const socketTimeoutSeconds = 2;
const maxConcurrentConnections = 10;
let daemon: TestDaemon;

/** A client that keeps posting from its own address (127.0.0.2) while the abuse runs, timing each message. */
function wellBehavedClient(port: number) {
  const latencies: number[] = [];
  const failures: string[] = [];
  let running = true;
  const loop = (async () => {
    let index = 0;
    while (running) {
      const started = performance.now();
      try {
        const client = await SmtpClient.connect(port, '127.0.0.1', { localAddress: '127.0.0.2', timeoutMs: 10_000 });
        await client.ehlo();
        const result = await sendMail({ port, client, from: 'applicant@vendor-z.example', to: [list], raw: makeMessage({ from: 'applicant@vendor-z.example', to: list, subject: `application ${index++}` }) });
        await client.quit();
        if (result.ok) latencies.push(performance.now() - started);
        else failures.push(`${result.stage} ${result.code} ${result.text}`);
      } catch (error) {
        failures.push(String(error));
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    latencies,
    failures,
    async stop() {
      running = false;
      await loop;
    },
  };
}

let good: ReturnType<typeof wellBehavedClient>;
let baseline: number[] = [];

beforeAll(async () => {
  daemon = await startTestDaemon({
    server: {
      smtp: {
        socketTimeoutSeconds,
        maxRecipients: 50,
        rateLimit: { maxConcurrentConnections, connectionsPerMinute: 100_000, messagesPerMinute: 100_000 },
      },
    },
    // Applicants may post often here: the well-behaved client is not what is being limited.
    lists: { 'predisclosure-applications': { description: 'Applications', kind: 'public', archive: 'public', postsPerHourPerSender: 100_000, members: [] } },
  });
  // The same client alone first, for comparison.
  const alone = wellBehavedClient(daemon.smtpPort);
  while (alone.latencies.length < 8) await new Promise((resolve) => setTimeout(resolve, 20));
  await alone.stop();
  baseline = [...alone.latencies].sort((a, b) => a - b);
  good = wellBehavedClient(daemon.smtpPort);
});

afterAll(async () => {
  await good?.stop();
  await daemon?.stop();
});


it('is no open relay: %-hacks, source routes, quoted local parts, bang paths, other domains and unknown names get 550', async () => {
  const client = await SmtpClient.connect(daemon.smtpPort);
  await client.ehlo();
  expect((await client.command('MAIL FROM:<attacker@outside.example>')).code).toBe(250);
  const refused: Record<string, number> = {};
  for (const address of [
    'victim@outside.example', // another domain
    `victim%outside.example@${domain}`, // percent hack
    `predisclosure-applications%outside.example@${domain}`,
    `@${domain},@relay.outside.example:victim@outside.example`, // source route to an outside mailbox
    `@${domain}:victim@outside.example`,
    `"predisclosure-applications"@${domain}`, // quoted local part
    `"victim@outside.example"@${domain}`, // quoted local part holding another address
    `outside.example!victim@${domain}`, // bang path
    `nobody@${domain}`, // our domain, unknown name
    `webmaster@${domain}`, // our domain, a name that is no list (postmaster is the one such name we accept, RFC 5321 4.5.1)
    `postmaster+victim=outside.example@${domain}`, // postmaster takes no +tag
    `predisclosure-applications@outside.example`, // a list name on another domain
    `predisclosure-applications@${domain}.outside.example`,
    `predisclosure-applications@sub.${domain}`,
    'victim@[127.0.0.1]', // address literal
    `predisclosure-applications-owner+victim=outside.example@${domain}`, // a +tag on a role that takes none
  ]) {
    const reply = await client.command(`RCPT TO:<${address}>`);
    refused[address] = reply.code;
  }
  // Every one 550, except a quoted string holding an @, which the SMTP parser already refuses as syntax (501).
  for (const [address, code] of Object.entries(refused)) expect(code, address).toBe(address.startsWith('"victim@') ? 501 : 550);
  // No recipient was accepted, so there is nothing to send.
  expect((await client.command('DATA')).code).toBe(503);
  // A source route that ends at one of our lists is ignored (RFC 5321 4.1.1.3): that is a post, not relaying.
  expect((await client.command(`RCPT TO:<@relay.outside.example:${list}>`)).code).toBe(250);
  await client.quit();
});

it(`closes a DATA sender that goes quiet after smtp.socketTimeoutSeconds (${socketTimeoutSeconds} s), storing nothing`, async () => {
  const client = await SmtpClient.connect(daemon.smtpPort);
  await client.ehlo();
  expect((await client.command('MAIL FROM:<slow@outside.example>')).code).toBe(250);
  expect((await client.command(`RCPT TO:<${list}>`)).code).toBe(250);
  expect((await client.command('DATA')).code).toBe(354);
  client.write('Subject: half a message\r\n\r\nthe first line, and then nothing more');
  const started = performance.now();
  const reply = await client.nextReply();
  const waited = (performance.now() - started) / 1000;
  // smtp-server says 421 (timeout) and closes.
  expect([0, 421]).toContain(reply.code);
  expect(waited).toBeGreaterThanOrEqual(socketTimeoutSeconds - 0.2);
  expect(waited).toBeLessThan(socketTimeoutSeconds + 3);
  expect(client.closed || (await client.nextReply()).code === 0).toBe(true);
  const slowRows = daemon.daemon!.db.prepare("SELECT COUNT(*) AS count FROM spool WHERE mail_from = 'slow@outside.example'").get() as { count: number };
  expect(slowRows.count).toBe(0);
});

it('answers a pipelining flood of 3,000 commands in order, and a recipient flood with 452 past maxRecipients', async () => {
  const client = await SmtpClient.connect(daemon.smtpPort);
  await client.ehlo();
  const commands: string[] = [];
  for (let index = 0; index < 1000; index++) commands.push('NOOP');
  for (let index = 0; index < 500; index++) commands.push('MAIL FROM:<flood@outside.example>', `RCPT TO:<${list}>`, 'RSET');
  for (let index = 0; index < 500; index++) commands.push('BOGUS command');
  client.write(commands.map((command) => `${command}\r\n`).join(''));
  const codes: number[] = [];
  for (let index = 0; index < commands.length; index++) codes.push((await client.nextReply()).code);
  expect(codes.slice(0, 2500).every((code) => code === 250)).toBe(true);
  // Unknown commands get 500; smtp-server closes the session after too many of them (421), which is fine too.
  expect(codes.slice(2500).every((code) => code === 500 || code === 421 || code === 0)).toBe(true);
  await client.quit();

  // 80 different recipients (bounce addresses with tokens: all ours), pipelined after one MAIL FROM.
  const recipients = await SmtpClient.connect(daemon.smtpPort);
  try {
    await recipients.ehlo();
    const rcpts = Array.from({ length: 80 }, (_, index) => `RCPT TO:<predisclosure-applications-bounces+${index}-flood@${domain}>`);
    recipients.write(['MAIL FROM:<flood@outside.example>', ...rcpts].map((command) => `${command}\r\n`).join(''));
    const replies: number[] = [];
    for (let index = 0; index < 81; index++) replies.push((await recipients.nextReply()).code);
    expect(replies.filter((code) => code === 250)).toHaveLength(51); // MAIL + 50 recipients
    expect(replies.filter((code) => code === 452)).toHaveLength(30);
  } finally {
    await recipients.quit();
  }
});

it(`refuses connections past maxConcurrentConnections (${maxConcurrentConnections}) from one address with 421`, async () => {
  // An address of its own: connections of earlier tests from 127.0.0.1 may still be closing on the server's side.
  const connect = () => SmtpClient.connect(daemon.smtpPort, '127.0.0.1', { localAddress: '127.0.0.3' });
  const open: SmtpClient[] = [];
  const refused: SmtpClient[] = [];
  try {
    for (let index = 0; index < maxConcurrentConnections + 5; index++) {
      const client = await connect();
      (client.greeting.code === 220 ? open : refused).push(client);
      // Keep the open ones busy: on a loaded machine, opening 15 connections can outlast the 2 s idle timeout,
      // and a connection the server closed for idling frees a slot in the middle of the count.
      for (const each of open) expect((await each.command('NOOP')).code).toBe(250);
    }
    expect(open).toHaveLength(maxConcurrentConnections);
    expect(refused).toHaveLength(5);
    for (const client of refused) expect(client.greeting.text).toMatch(/4\.7\.0 too many concurrent connections/);
  } finally {
    for (const client of [...open, ...refused]) await client.quit().catch(() => undefined);
  }
  // Once they are closed the address is welcome again, as soon as the server has seen the closes.
  const deadline = Date.now() + 30_000;
  let again = await connect();
  while (again.greeting.code !== 220 && Date.now() < deadline) {
    again.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    again = await connect();
  }
  expect(again.greeting.code).toBe(220);
  await again.quit();
});

it('answers oversized command lines: 501 for a 10 KB address (the session goes on), 421 and close past 16 KiB', async () => {
  const client = await SmtpClient.connect(daemon.smtpPort);
  await client.ehlo();
  expect((await client.command(`MAIL FROM:<${'a'.repeat(10_000)}@outside.example>`)).code).toBe(501);
  expect((await client.command(`EHLO ${'h'.repeat(5_000)}`)).code).toBe(501);
  expect((await client.command('NOOP')).code).toBe(250);
  const long = await client.command(`NOOP ${'n'.repeat(20_000)}`);
  expect(long.code).toBe(421);
  expect(long.text).toMatch(/line too long/i);
  expect((await client.command('NOOP')).code).toBe(0);

  // A megabyte without any line end is cut off the same way, without the server holding it.
  const endless = await SmtpClient.connect(daemon.smtpPort);
  endless.write('X'.repeat(1024 * 1024));
  expect((await endless.nextReply()).code).toBe(421);
  endless.destroy();
});

it('kept serving a well-behaved client from another address during all of the above', async () => {
  await good.stop();
  const sorted = [...good.latencies].sort((a, b) => a - b);
  const percentile = (fraction: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]);
  console.log(
    `well-behaved client during the abuse: ${sorted.length} messages, latency connect → 250 p50 ${percentile(0.5)} ms, p95 ${percentile(0.95)} ms, max ${Math.round(sorted[sorted.length - 1])} ms; failures: ${good.failures.length}` +
      ` (alone before the abuse: p50 ${Math.round(baseline[Math.floor(baseline.length / 2)])} ms, max ${Math.round(baseline[baseline.length - 1])} ms)`,
  );
  expect(good.failures).toEqual([]);
  expect(sorted.length).toBeGreaterThan(10);
  expect(percentile(0.95)).toBeLessThan(1000);
});
