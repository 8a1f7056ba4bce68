// Delivery benchmark: copies per second from the durable outbound queue to a local relay peer at concurrency 1, 8 and 32.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../src/store/database.ts';
import { migrations } from '../src/schema.ts';
import { createLogger } from '../src/util/log.ts';
import { createDelivery } from '../src/smtp/delivery.ts';
import { enqueueOutgoing, queueCounts } from '../src/queues/outbound.ts';
import { relayTestConfig, startRelayPeer } from '../test/helpers/relay.ts';
import type { BenchRow } from './types.ts';

const payloadBytes = 10 * 1024;
const repetitions = Number(process.env.BENCH_DELIVERY_REPETITIONS ?? 3);
const copiesFor: Record<number, number> = { 1: 500, 8: 2000, 32: 2000 };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** One run: `copies` rows of one fan-out (shared 10 KiB payload), timed from start() until the last is marked sent. */
async function once(concurrency: number, copies: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'embargo-bench-delivery-'));
  const db = openDatabase(join(dir, 'embargo.sqlite'), migrations);
  const relay = await startRelayPeer();
  const config = relayTestConfig(relay, { dataPath: dir, relay: { concurrency } });
  const delivery = createDelivery({ db, config: () => config, logger: createLogger('silent'), secret: Buffer.alloc(32, 1) });
  try {
    const payload = Buffer.from('A'.repeat(75).concat('\r\n').repeat(Math.ceil(payloadBytes / 77)));
    enqueueOutgoing(db, {
      spoolId: 'bench',
      list: 'bench',
      payload,
      copies: Array.from({ length: copies }, (_, index) => ({
        recipient: `member${index}@example.net`,
        head: Buffer.from(`To: member${index}@example.net\r\nSubject: bench\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\n`),
        tail: Buffer.from('-----END PGP MESSAGE-----\r\n'),
      })),
    });
    const started = performance.now();
    await delivery.start();
    await delivery.whenIdle();
    const seconds = (performance.now() - started) / 1000;
    const counts = queueCounts(db);
    if (counts.sent !== copies || relay.messages.length !== copies) {
      throw new Error(`bench run incomplete: ${JSON.stringify(counts)}, relay got ${relay.messages.length}`);
    }
    return copies / seconds;
  } finally {
    await delivery.stop();
    await relay.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const concurrency of [1, 8, 32]) {
    const rates: number[] = [];
    for (let repetition = 0; repetition < repetitions; repetition++) rates.push(await once(concurrency, copiesFor[concurrency]));
    rows.push({
      scenario: `${copiesFor[concurrency]} copies × 10 KiB to a local relay peer, concurrency ${concurrency} (median of ${repetitions})`,
      metric: 'deliveries',
      value: Math.round(median(rates)),
      unit: 'per second',
    });
  }
  return rows;
}
