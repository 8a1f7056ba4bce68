// /metrics scraped over HTTP around end-to-end posts: every counter moves by exactly what happened (real SMTP, GnuPG, relay peer).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announce, buildPost, domain, startListWorld } from '../helpers/lists.ts';
import type { ListWorld } from '../helpers/lists.ts';
import { metricDeclarations } from '../helpers/metrics.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

let world: ListWorld;
const listAddress = `${announce}@${domain}`;

beforeAll(async () => {
  world = await startListWorld();
}, 60_000);

afterAll(async () => {
  await world?.stop();
});

type Scrape = Map<string, number>;

/** Parses the Prometheus text format into `name{labels}` → value (labels as rendered). */
async function scrape(): Promise<Scrape> {
  const response = await fetch(`http://127.0.0.1:${world.daemon.metricsPort}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  const values: Scrape = new Map();
  for (const line of (await response.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

const delta = (before: Scrape, after: Scrape, series: string) => (after.get(series) ?? 0) - (before.get(series) ?? 0);

describe('/metrics after end-to-end posts', () => {
  it('counts received, accepted, rejected (SMTP and pipeline), delivered, deferred, failed, queue depth and fan-out time', async () => {
    const before = await scrape();
    const mark = world.relay.messages.length;
    // The relay defers vendor A's copy once (then takes it) and refuses vendor B's for good.
    world.relay.inject({ at: 'RCPT', action: 'reply', code: 451, times: 1, match: (envelope) => envelope.to.at(-1) === world.vendorA.address });
    world.relay.inject({ at: 'RCPT', action: 'reply', code: 550, times: 1, match: (envelope) => envelope.to.at(-1) === world.vendorB.address });

    // 1. A signed and encrypted advisory: accepted, fanned out.
    const post = await buildPost(world, { from: world.security, to: listAddress, subject: 'XSA-1000: metrics', body: 'Counted, not logged.' });
    const accepted = await world.send(world.security.address, [listAddress], post.raw);
    expect(await world.waitForState(accepted, ['done', 'rejected', 'held', 'shunted'])).toBe('done');
    // 2. A plain post to the encrypted list: refused by the pipeline.
    const plain = await world.send(world.outsider.address, [listAddress], makeMessage({ from: world.outsider.address, to: listAddress, subject: 'plain' }));
    expect(await world.waitForState(plain, ['done', 'rejected', 'held', 'shunted', 'discarded'])).toBe('rejected');
    // 3. An unknown recipient: refused at RCPT with 550, nothing stored.
    const unknown = await sendMail({ port: world.daemon.smtpPort, from: 'a@example.net', to: [`nobody@${domain}`], raw: makeMessage() });
    expect(unknown.code).toBe(550);
    // 4. Too big for the server: 552 after DATA.
    const maxBytes = world.daemon.daemon!.config().server.smtp.maxMessageBytes;
    const big = await sendMail({ port: world.daemon.smtpPort, from: 'a@example.net', to: [listAddress], raw: makeMessage({ size: maxBytes + 1024 }) });
    expect(big.code).toBe(552);

    const delivered = await world.settle(mark);
    const after = await scrape();

    // Spooled (accepted with 250): the advisory and the plain post.
    expect(delta(before, after, 'embargo_smtp_spooled_total')).toBe(2);
    // Received: every message whose DATA ended (the two stored and the one too big); the 550 never got to DATA.
    expect(delta(before, after, 'embargo_smtp_received_total')).toBe(3);
    expect(delta(before, after, 'embargo_smtp_refused_total{code="550",reason="unknown-recipient"}')).toBe(1);
    expect(delta(before, after, 'embargo_smtp_refused_total{code="552",reason="too-big"}')).toBe(1);
    expect(delta(before, after, `embargo_posts_total{list="private",outcome="accept"}`)).toBe(1);
    expect(delta(before, after, `embargo_posts_total{list="private",outcome="reject"}`)).toBe(1);
    expect(delta(before, after, `embargo_posts_rejected_total{list="private",reason="not-encrypted"}`)).toBe(1);
    expect(delta(before, after, 'embargo_pipeline_messages_total{state="done"}')).toBe(1);
    expect(delta(before, after, 'embargo_pipeline_messages_total{state="rejected"}')).toBe(1);

    // Delivery: every copy the relay took is one "delivered"; vendor A's first try one "deferred"; vendor B's one "failed".
    expect(delivered.length).toBeGreaterThan(3);
    expect(delta(before, after, 'embargo_delivered_total')).toBe(delivered.length);
    expect(delta(before, after, 'embargo_deferred_total')).toBe(1);
    expect(delta(before, after, 'embargo_failed_total')).toBe(1);
    expect(delivered.filter((message) => message.to.includes(world.vendorA.address))).toHaveLength(1);
    expect(delivered.filter((message) => message.to.includes(world.vendorB.address))).toHaveLength(0);

    // Queue depth by state, and nothing waiting: the oldest waiting row is 0 s old.
    expect(delta(before, after, 'embargo_queue_depth{state="sent"}')).toBe(delivered.length);
    expect(delta(before, after, 'embargo_queue_depth{state="failed"}')).toBe(1);
    expect(after.get('embargo_queue_depth{state="queued"}')).toBe(0);
    expect(after.get('embargo_queue_oldest_age_seconds')).toBe(0);
    expect(after.get('embargo_spool_messages{state="done"}')).toBeGreaterThanOrEqual(1);

    // One fan-out observed for the advisory (the rejected post never reached the stage).
    expect(delta(before, after, 'embargo_fanout_seconds_count')).toBe(1);
    expect(after.get('embargo_fanout_seconds_sum')).toBeGreaterThan(0);

    // No personal data in any series: no address, no subject.
    const text = await (await fetch(`http://127.0.0.1:${world.daemon.metricsPort}/metrics`)).text();
    expect(text).not.toMatch(/@/);
    expect(text).not.toContain('XSA-1000');
  }, 60_000);

  it('has one HELP and one TYPE line for each metric, and each metric it shows is declared once in src/', async () => {
    const text = await (await fetch(`http://127.0.0.1:${world.daemon.metricsPort}/metrics`)).text();
    const helps = [...text.matchAll(/^# HELP (\S+) /gm)].map((match) => match[1]);
    const types = [...text.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]);
    // The posts above moved the SMTP, pipeline and delivery series, so a good part of them is on show.
    expect(helps.length).toBeGreaterThan(10);
    expect(types).toEqual(helps);
    expect(new Set(helps).size).toBe(helps.length);
    const { names } = metricDeclarations();
    expect(helps.filter((name) => names.filter((declared) => declared === name).length !== 1)).toEqual([]);
  });
});
