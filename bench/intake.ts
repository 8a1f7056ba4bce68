// SMTP intake benchmark: durable accepts per second and latency, 10 KiB messages over 50 concurrent connections, real daemon.
import Database from 'better-sqlite3';
import { startTestDaemon } from '../test/helpers/daemon.ts';
import type { TestDaemon } from '../test/helpers/daemon.ts';
import { SmtpClient, makeMessage } from '../test/helpers/smtp.ts';
import type { BenchRow } from './types.ts';

const list = 'predisclosure-applications@lists.example.org';
const messageBytes = 10 * 1024;
const connections = 50;
const messagesPerConnection = Number(process.env.BENCH_INTAKE_PER_CONNECTION ?? 100);
const targetPerSecond = 500;

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

/** One connection sending `count` messages back to back; returns each transaction's latency (MAIL FROM → 250) in ms. */
async function sender(port: number, raw: string, count: number, ids: string[]): Promise<number[]> {
  const client = await SmtpClient.connect(port);
  if (client.greeting.code !== 220) throw new Error(`greeting ${client.greeting.code} ${client.greeting.text}`);
  await client.ehlo('bench.invalid');
  const latencies: number[] = [];
  for (let index = 0; index < count; index++) {
    const started = performance.now();
    const mail = await client.command('MAIL FROM:<bench@example.net>');
    const rcpt = await client.command(`RCPT TO:<${list}>`);
    if (mail.code !== 250 || rcpt.code !== 250) throw new Error(`refused: ${mail.code} ${rcpt.code} ${rcpt.text}`);
    const done = await client.data(raw);
    if (done.code !== 250) throw new Error(`DATA refused: ${done.code} ${done.text}`);
    latencies.push(performance.now() - started);
    ids.push(/queued as (\S+)/.exec(done.text)![1]);
  }
  await client.quit();
  return latencies;
}

async function scenario(daemon: TestDaemon, parallel: number, perConnection: number) {
  const raw = makeMessage({ to: list, size: messageBytes });
  const ids: string[] = [];
  const started = performance.now();
  const latencies = (await Promise.all(Array.from({ length: parallel }, () => sender(daemon.smtpPort, raw, perConnection, ids)))).flat();
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { ids, seconds, perSecond: ids.length / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

export async function run(): Promise<BenchRow[]> {
  const daemon = await startTestDaemon({
    mode: 'child',
    server: {
      // Intake's own rate, so the per-address limits and backlog caps (backpressure, measured by the flood bench) are lifted.
      smtp: { rateLimit: { connectionsPerMinute: 100_000, messagesPerMinute: 1_000_000, maxConcurrentConnections: 1_000, maxBacklogPerAddress: 1_000_000, maxBacklog: 1_000_000 } },
    },
  });
  try {
    // Warm up: JIT, SQLite page cache, WAL file growth.
    await scenario(daemon, 10, 10);
    const concurrent = await scenario(daemon, connections, messagesPerConnection);
    const single = await scenario(daemon, 1, 200);

    // Durable means durable: every 250 must be a committed row, read back from the file by another connection.
    const db = new Database(daemon.config.dbFile, { readonly: true });
    const stored = db.prepare('SELECT COUNT(*) AS count FROM spool WHERE id IN (SELECT value FROM json_each(?))').get(JSON.stringify(concurrent.ids)) as {
      count: number;
    };
    db.close();

    const name = `${connections} connections × ${messagesPerConnection} msgs, 10 KiB`;
    return [
      { scenario: name, metric: 'durable accepts', value: concurrent.perSecond, unit: 'msg/s', target: `≥ ${targetPerSecond}`, ok: concurrent.perSecond >= targetPerSecond },
      { scenario: name, metric: 'latency p50', value: concurrent.p50, unit: 'ms' },
      { scenario: name, metric: 'latency p99', value: concurrent.p99, unit: 'ms' },
      { scenario: name, metric: 'rows committed / 250s', value: stored.count / concurrent.ids.length, unit: 'ratio', target: '= 1', ok: stored.count === concurrent.ids.length },
      { scenario: '1 connection × 200 msgs, 10 KiB', metric: 'durable accepts', value: single.perSecond, unit: 'msg/s' },
      { scenario: '1 connection × 200 msgs, 10 KiB', metric: 'latency p50', value: single.p50, unit: 'ms' },
      { scenario: '1 connection × 200 msgs, 10 KiB', metric: 'latency p99', value: single.p99, unit: 'ms' },
    ];
  } finally {
    await daemon.stop();
  }
}
