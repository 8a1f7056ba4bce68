// Invariant 4 (threat: a malformed message that wedges or crashes a list address): the worst structures, sent to every address of every list kind, end in a decision, never a shunt.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deepEntity, manyPartsEntity, maxPipelineMs } from '../../bench/fuzz.ts';
import { startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { sendMail } from '../helpers/smtp.ts';

let daemon: TestDaemon;
const domain = 'lists.example.org';
// One list of each kind in the shipped config.
const lists = ['xen-security-issues', 'xen-security-issues-discuss', 'predisclosure-applications'];
const roles = ['', '-request', '-owner', '-sendkey', '-bounces', '-bounces+1-abcdefabcdef'];

beforeAll(async () => {
  // Every structure goes to every address at once from one client: the per-address backlog cap (backpressure, tested in
  // test/smtp/backpressure.test.ts) would answer 451 to part of it, which is not what this test is about.
  daemon = await startTestDaemon({ server: { smtp: { maxMessageBytes: 5 * 1024 * 1024, rateLimit: { maxBacklogPerAddress: 5000 } } } });
});

afterAll(async () => {
  await daemon?.stop();
});

const head = (id: string) => `From: prober@outside.example\r\nTo: list\r\nSubject: help\r\nMessage-ID: <${id}@outside.example>\r\nMIME-Version: 1.0\r\n`;

const structures: Record<string, (id: string) => Buffer> = {
  'multipart nested 1000 deep': (id) => Buffer.from(head(id) + deepEntity(1000)),
  'message/rfc822 nested 100 deep': (id) => Buffer.from(head(id) + deepEntity(100, true)),
  '10,000 parts': (id) => Buffer.from(head(id) + manyPartsEntity(10_000)),
  '1 MiB header line': (id) => Buffer.from(`${head(id)}X-Long: ${'x'.repeat(1024 * 1024)}\r\nContent-Type: text/plain\r\n\r\nbody\r\n`),
  '1 MiB display name in From': (id) => Buffer.from(head(id).replace('From: prober@outside.example', `From: "${'N'.repeat(1024 * 1024)}" <prober@outside.example>`) + 'Content-Type: text/plain\r\n\r\nbody\r\n'),
  '1 MiB Subject, Message-ID and References (copied into copies)': (id) =>
    Buffer.from(
      head(id).replace('Subject: help', `Subject: ${'S'.repeat(1024 * 1024)}`).replace(`<${id}@`, `<${id}${'m'.repeat(1024 * 1024)}@`) +
        `References: ${'<ref@x.example> '.repeat(65536)}\r\nContent-Type: text/plain\r\n\r\nbody\r\n`,
    ),
  'NUL bytes and invalid UTF-8': (id) => Buffer.concat([Buffer.from(`${head(id)}Content-Type: text/plain; charset=utf-8\r\n\r\n`), Buffer.from([0, 0xff, 0xfe, 0xc0, 0xaf, 0, 0xed, 0xa0, 0x80]), Buffer.from('\r\n')]),
};

it('answers every address of every list kind with a final state for each hostile structure', async () => {
  const sent: Array<{ id: string; what: string; to: string }> = [];
  let counter = 0;
  for (const [what, build] of Object.entries(structures)) {
    const addresses = lists.flatMap((list) => roles.map((role) => `${list}${role}@${domain}`));
    await Promise.all(
      addresses.map(async (to) => {
        const result = await sendMail({ port: daemon.smtpPort, from: 'prober@outside.example', to: [to], raw: build(`s${counter++}`) });
        expect(result, `${what} to ${to}`).toMatchObject({ ok: true, code: 250 });
        sent.push({ id: result.spoolId!, what, to });
      }),
    );
  }
  const db = daemon.daemon!.db;
  const deadline = Date.now() + 40_000;
  const stateOf = db.prepare('SELECT state, reason FROM spool WHERE id = ?');
  const final = ['done', 'held', 'rejected', 'discarded'];
  for (;;) {
    const pending = sent.filter((entry) => !final.includes((stateOf.get(entry.id) as { state: string }).state) && (stateOf.get(entry.id) as { state: string }).state !== 'shunted');
    if (pending.length === 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const wrong = sent
    .map((entry) => ({ ...entry, ...(stateOf.get(entry.id) as { state: string; reason: string | null }) }))
    .filter((entry) => !final.includes(entry.state));
  expect(wrong, JSON.stringify(wrong, null, 1)).toEqual([]);
  expect(daemon.logs().filter((line) => (line.level ?? 0) >= 50)).toEqual([]);
  // No message may hold the pipeline (every list waits behind it) for long.
  const slowest = Math.max(...daemon.logs().filter((line) => line.msg === 'message processed').map((line) => Number(line.ms)));
  console.log(`slowest message in the pipeline: ${slowest} ms`);
  expect(slowest).toBeLessThan(maxPipelineMs);
}, 90_000);
