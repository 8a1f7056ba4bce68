// Fault: the relay is down for a long time. The queue holds every copy, retrying; /metrics shows the oldest copy's age growing; all go out once it is back.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { publicListOf, startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { startRelayPeer } from '../helpers/relay.ts';
import type { RelayPeer } from '../helpers/relay.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const list = 'predisclosure-applications@lists.example.org';
const recipients = ['security@xenproject.example', 'security@vendor-a.example'];
let daemon: TestDaemon;
let relay: RelayPeer | null = null;

beforeAll(async () => {
  daemon = await startTestDaemon({
    // Nothing listens on port 9: every attempt fails with a connection error (a temporary failure).
    relay: { host: '127.0.0.1', port: 9 },
    server: { relay: { retrySchedule: [1], maxAgeHours: 120 }, schedules: { retrySweep: '* * * * * *' } },
    lists: {
      'predisclosure-applications': publicListOf(recipients.map((email, index) => ({ email, keyFile: index === 0 ? 'xenproject-security.asc' : 'vendor-a.asc' }))),
    },
  });
});

afterAll(async () => {
  await daemon?.stop();
  await relay?.close();
});

async function scrape(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('holds the copies while the relay is down (age on /metrics grows, attempts go on, nothing expires), then delivers them all', async () => {
  for (let index = 0; index < 3; index++) {
    const from = `applicant${index}@vendor.example`;
    expect((await sendMail({ port: daemon.smtpPort, from, to: [list], raw: makeMessage({ from, to: list, subject: `application ${index}` }) })).code).toBe(250);
  }
  const db = daemon.daemon!.db;
  const waiting = () => db.prepare(`SELECT state, COUNT(*) AS count, MIN(attempts) AS attempts FROM outbound GROUP BY state`).all() as Array<{ state: string; count: number; attempts: number }>;
  // Three posts, two members each: six copies.
  while ((waiting().find((row) => row.state === 'deferred')?.count ?? 0) < 6) await sleep(100);

  await sleep(1100);
  const first = await scrape();
  await sleep(3000);
  const second = await scrape();
  const age = (values: Map<string, number>) => values.get('embargo_queue_oldest_age_seconds') ?? 0;
  console.log(`relay down: oldest copy ${age(first)} s, 3 s later ${age(second)} s; deferred attempts ${first.get('embargo_deferred_total')} → ${second.get('embargo_deferred_total')}`);
  expect(age(first)).toBeGreaterThan(0);
  expect(age(second) - age(first)).toBeGreaterThanOrEqual(2);
  expect(second.get('embargo_queue_depth{state="deferred"}')).toBe(6);
  expect(second.get('embargo_deferred_total')!).toBeGreaterThan(first.get('embargo_deferred_total')!);
  expect(waiting()).toEqual([expect.objectContaining({ state: 'deferred', count: 6 })]);
  expect(waiting()[0].attempts).toBeGreaterThanOrEqual(2);
  expect(second.get('embargo_failed_total') ?? 0).toBe(0);
  expect(second.get('embargo_expired_total') ?? 0).toBe(0);

  // The relay comes back (here: at a new address, applied by a hot reload of server.yaml).
  relay = await startRelayPeer();
  daemon.config.editServer({ relay: { host: relay.host, port: relay.port } });
  await relay.waitForMessages(6, 20_000);
  for (const recipient of recipients) expect(relay.deliveredTo(recipient)).toHaveLength(3);
  await sleep(200);
  const after = await scrape();
  expect(after.get('embargo_queue_oldest_age_seconds')).toBe(0);
  expect(after.get('embargo_queue_depth{state="deferred"}') ?? 0).toBe(0);
});
