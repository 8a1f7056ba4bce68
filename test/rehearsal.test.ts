// The start-up rehearsal: a real daemon rehearses a post before it is ready and leaves no trace of it (no row, no relay connection, no log line, no count); a delivery setup that cannot work shows at start.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTestConfig, publicListOf, startTestDaemon, type TestConfig, type TestDaemon } from './helpers/daemon.ts';
import { startRelayPeer, type RelayPeer } from './helpers/relay.ts';
import { makeMessage, sendMail } from './helpers/smtp.ts';

const list = 'predisclosure-applications@lists.example.org';
const members = ['security@xenproject.example', 'security@vendor-a.example'];

/** A counter's value on /metrics (0 when the series is not there yet). */
function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('start-up rehearsal', () => {
  let relay: RelayPeer | null = null;
  let config: TestConfig | null = null;
  let daemon: TestDaemon | null = null;

  afterEach(async () => {
    await daemon?.stop();
    await relay?.close();
    config?.cleanup();
    daemon = null;
    relay = null;
    config = null;
  });

  function configWith(server: Record<string, unknown> = {}): TestConfig {
    return makeTestConfig({
      relay: { host: relay!.host, port: relay!.port },
      server,
      lists: { 'predisclosure-applications': publicListOf(members.map((email, index) => ({ email, keyFile: index === 0 ? 'xenproject-security.asc' : 'vendor-a.asc' }))) },
    });
  }

  it('runs a post through the pipeline and delivery before ready, and leaves no row, connection, log line or count behind', async () => {
    relay = await startRelayPeer();
    config = configWith();
    daemon = await startTestDaemon({ mode: 'child', config });

    const lines = daemon.logs();
    const rehearsed = lines.findIndex((line) => line.msg === 'start-up rehearsal: a post went through the pipeline and delivery');
    expect(rehearsed).toBeGreaterThan(-1);
    expect(lines[rehearsed].copies).toBe(2);
    expect(rehearsed).toBeLessThan(lines.findIndex((line) => line.msg === 'embargo ready'));
    expect(lines.filter((line) => line.msg === 'message processed' || line.msg === 'delivered')).toEqual([]);
    expect(relay.connections()).toBe(0);

    const database = new Database(join(config.dataDir, 'embargo.sqlite'), { readonly: true });
    try {
      for (const table of ['spool', 'outbound', 'outbound_payload', 'archive_entries', 'accepted_signatures', 'advisory_deliveries']) {
        expect({ table, rows: (database.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n }).toEqual({ table, rows: 0 });
      }
    } finally {
      database.close();
    }
    const before = await (await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`)).text();
    expect(metricValue(before, 'embargo_delivered_total')).toBe(0);
    expect(metricValue(before, 'embargo_pipeline_messages_total{state="done"}')).toBe(0);
    expect(metricValue(before, 'embargo_fanout_seconds_count')).toBe(0);

    // The first real post after it is counted as usual: the rehearsal gave the metrics back.
    const from = 'applicant@vendor.example';
    const sent = await sendMail({ port: daemon.smtpPort, from, to: [list], raw: makeMessage({ from, to: list, subject: 'application', body: 'Please add us.\r\n' }) });
    expect(sent.code).toBe(250);
    await relay.waitForMessages(members.length, 60_000);
    const after = await (await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`)).text();
    expect(metricValue(after, 'embargo_pipeline_messages_total{state="done"}')).toBe(1);
    await expect.poll(async () => metricValue(await (await fetch(`http://127.0.0.1:${daemon!.metricsPort}/metrics`)).text(), 'embargo_delivered_total'), { timeout: 30_000 }).toBe(members.length);
  });

  it('is skipped, and the daemon starts, when no list is configured', async () => {
    config = makeTestConfig({ removeLists: ['xen-security-issues', 'xen-security-issues-discuss', 'predisclosure-applications'] });
    daemon = await startTestDaemon({ mode: 'child', config });
    expect(daemon.logs().find((line) => line.msg === 'start-up rehearsal skipped')?.reason).toBe('no list is configured');
  });

  it('says at start when delivery cannot work (a DKIM selector without its key), and the daemon still starts', async () => {
    relay = await startRelayPeer();
    config = configWith({ dkim: { selector: 'missing2026' } });
    daemon = await startTestDaemon({ mode: 'child', config });

    const warning = daemon.logs().find((line) => line.msg === 'start-up rehearsal failed; the first post may be slow, or fail the same way');
    expect(warning?.err).toMatch(/^0 of 2 copies were delivered; delivery said: .*dkim\.selector is missing2026 but its key .* cannot be read \(ENOENT\); run: embargo dkim generate --selector missing2026/);
    expect(relay.connections()).toBe(0);
  });
});
