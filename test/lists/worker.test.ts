// The pipeline worker on a real SQLite spool: a bug shunts one message and the next goes on; retries are bounded; commits are atomic.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loader.ts';
import type { Config } from '../../src/config/types.ts';
import { ensureListKey } from '../../src/crypto/index.ts';
import type { ListKey } from '../../src/crypto/index.ts';
import type { DaemonContext } from '../../src/component.ts';
import { proceed } from '../../src/lists/context.ts';
import { createPipelineWorker } from '../../src/lists/worker.ts';
import type { WorkerOptions } from '../../src/lists/worker.ts';
import { createSpool } from '../../src/queues/spool.ts';
import type { Spool } from '../../src/queues/spool.ts';
import { openDatabase } from '../../src/store/database.ts';
import { migrations } from '../../src/schema.ts';
import type { Db } from '../../src/store/database.ts';
import { makeTestConfig } from '../helpers/daemon.ts';
import type { TestConfig } from '../helpers/daemon.ts';
import { makeMessage } from '../helpers/smtp.ts';

const domain = 'lists.example.org';
let testConfig: TestConfig;
let config: Config;
let db: Db;
let spool: Spool;
let logLines: string[];
const keys = new Map<string, Promise<ListKey>>();

beforeAll(async () => {
  testConfig = makeTestConfig({
    removeLists: ['xen-security-issues', 'xen-security-issues-discuss', 'predisclosure-applications'],
    server: { admins: ['postmaster@lists.example.org'] },
    lists: {
      open: { kind: 'public', archive: 'none', members: [{ email: 'reader@example.net', roles: ['recipient'] }] },
      quiet: {
        kind: 'public',
        archive: 'none',
        sendToPoster: false,
        members: [
          { email: 'poster@example.net', roles: ['recipient'] },
          { email: 'reader@example.net', roles: ['recipient'] },
        ],
      },
    },
  });
  const loaded = await loadConfig(testConfig.configDir);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  config = loaded.config;
});

afterAll(() => {
  db?.close();
  testConfig?.cleanup();
});

beforeEach(() => {
  db?.close();
  db = openDatabase(`${testConfig.dataDir}/worker-${Math.random().toString(36).slice(2)}.sqlite`, migrations);
  spool = createSpool(db);
  logLines = [];
});

function worker(options: WorkerOptions = {}) {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(chunk.toString());
      callback();
    },
  });
  const context: DaemonContext = {
    config: () => config,
    db,
    spool,
    logger: pino({ level: 'info' }, sink),
    listKey(name) {
      let key = keys.get(name);
      if (!key) {
        key = ensureListKey({ dataDir: testConfig.dataDir, listName: name, domain });
        keys.set(name, key);
      }
      return key;
    },
    onSpooled: () => undefined,
    onConfigReload: () => undefined,
    reportListening: () => undefined,
  };
  return createPipelineWorker(context, { pollIntervalMs: 60_000, ...options });
}

function spoolPost(subject: string, list = 'open'): string {
  const raw = Buffer.from(makeMessage({ from: 'Poster <poster@example.net>', to: `${list}@${domain}`, subject, body: 'SECRET-BODY-TEXT' }));
  return spool.insert({ mailFrom: 'poster@example.net', rcptTo: [`${list}@${domain}`], remoteAddress: '127.0.0.1', helo: 'test', raw });
}

const outboundFor = (spoolId: string) => db.prepare('SELECT recipient FROM outbound WHERE spool_id = ? ORDER BY id').all(spoolId) as Array<{ recipient: string }>;

describe('pipeline worker', () => {
  it('processes spooled posts in arrival order and fans them out', async () => {
    const first = spoolPost('one');
    const second = spoolPost('two');
    const pipeline = worker();
    await pipeline.start();
    await pipeline.drain();
    await pipeline.stop();
    expect(spool.get(first)!.state).toBe('done');
    expect(spool.get(second)!.state).toBe('done');
    expect(outboundFor(first)).toEqual([{ recipient: 'reader@example.net' }]);
    const ids = db.prepare('SELECT spool_id FROM outbound ORDER BY id').all() as Array<{ spool_id: string }>;
    expect(ids.map((row) => row.spool_id)).toEqual([first, second]);
  });

  it('shunts a message whose stage throws, keeps its bytes, tells the admins, logs only the id, and goes on', async () => {
    const broken = spoolPost('breaks');
    const fine = spoolPost('fine');
    let calls = 0;
    const pipeline = worker({
      stages: {
        'build-clean-copy': (context) => {
          calls += 1;
          if (context.spoolId === broken) throw new TypeError('simulated bug: SECRET-BODY-TEXT');
          return import('../../src/lists/stages/build-clean-copy.ts').then((module) => module.buildCleanCopy(context));
        },
      },
    });
    await pipeline.start();
    await pipeline.drain();
    await pipeline.stop();
    expect(calls).toBe(2);
    const row = spool.get(broken)!;
    expect(row.state).toBe('shunted');
    expect(row.raw.toString()).toContain('SECRET-BODY-TEXT');
    expect(outboundFor(broken)).toEqual([{ recipient: 'postmaster@lists.example.org' }]);
    expect(spool.get(fine)!.state).toBe('done');
    const logs = logLines.join('');
    expect(logs).toContain(broken);
    expect(logs).not.toContain('SECRET-BODY-TEXT');
  });

  it('writes nothing of a message when its commit fails: no outgoing rows, no half state', async () => {
    const id = spoolPost('atomic');
    const pipeline = worker({
      stages: {
        moderate: (context) => {
          context.effects.push(() => {
            throw new Error('disk full while committing');
          });
          return proceed;
        },
      },
    });
    await pipeline.start();
    await pipeline.drain();
    await pipeline.stop();
    // The fan-out rows were in the failed transaction: only the admins' shunt notice exists.
    expect(outboundFor(id)).toEqual([{ recipient: 'postmaster@lists.example.org' }]);
    expect(spool.get(id)!.state).toBe('shunted');
  });

  it('retries a message left in processing by a crash, and shunts it after three attempts', async () => {
    const retried = spoolPost('crashed once');
    const exhausted = spoolPost('crashed three times');
    db.prepare(`UPDATE spool SET state = 'processing', attempts = 1 WHERE id = ?`).run(retried);
    db.prepare(`UPDATE spool SET state = 'processing', attempts = 3 WHERE id = ?`).run(exhausted);
    expect(spool.resetProcessing()).toBe(2);
    const pipeline = worker();
    await pipeline.start();
    await pipeline.drain();
    await pipeline.stop();
    expect(spool.get(retried)!.state).toBe('done');
    expect(outboundFor(retried)).toEqual([{ recipient: 'reader@example.net' }]);
    const row = spool.get(exhausted)!;
    expect(row.state).toBe('shunted');
    expect(row.reason).toMatch(/attempts/);
    expect(outboundFor(exhausted)).toEqual([{ recipient: 'postmaster@lists.example.org' }]);
  });

  it('handles messages that waited in the claim-ahead window at four crashes, instead of shunting them (invariant 5)', async () => {
    const waiting = [spoolPost('waited one'), spoolPost('waited two'), spoolPost('waited three')];
    // What a crash leaves: the rows claimed ahead of their turn (as the worker does for its pool), then a restart.
    for (let crash = 0; crash < 4; crash++) {
      for (let claim = 0; claim < waiting.length; claim++) spool.claimNext();
      expect(spool.resetProcessing()).toBe(waiting.length);
    }
    const pipeline = worker();
    await pipeline.start();
    await pipeline.drain();
    await pipeline.stop();
    expect(waiting.map((id) => spool.get(id)!.state)).toEqual(['done', 'done', 'done']);
    for (const id of waiting) expect(outboundFor(id)).toEqual([{ recipient: 'reader@example.net' }]);
  });

  it('leaves the poster out when the list says sendToPoster: false', async () => {
    const id = spoolPost('not to me', 'quiet');
    const pipeline = worker();
    await pipeline.start();
    await pipeline.drain();
    await pipeline.stop();
    expect(outboundFor(id)).toEqual([{ recipient: 'reader@example.net' }]);
  });

  it('never completes a message twice: a finished row is not claimed again', async () => {
    const id = spoolPost('once');
    const pipeline = worker();
    await pipeline.start();
    await pipeline.drain();
    await pipeline.drain();
    await pipeline.stop();
    const again = worker();
    await again.start();
    await again.drain();
    await again.stop();
    expect(outboundFor(id)).toHaveLength(1);
  });
});

describe('pipeline worker and a locked database', () => {
  it('puts the message back in the queue when the database stays locked, and finishes it once the lock is gone', async () => {
    const id = spoolPost('locked out');
    const Database = (await import('better-sqlite3')).default;
    const other = new Database(db.name);
    db.pragma('busy_timeout = 50');
    const pipeline = worker();
    await pipeline.start();
    // Another writer (a long CLI transaction) holds the write lock while the worker is busy sealing.
    other.exec('BEGIN IMMEDIATE');
    await pipeline.drain();
    other.exec('COMMIT');
    expect(['processing', 'queued']).toContain(spool.get(id)!.state);
    expect(outboundFor(id)).toEqual([]);
    await pipeline.drain();
    await pipeline.stop();
    other.close();
    expect(spool.get(id)!.state).toBe('done');
    expect(outboundFor(id)).toEqual([{ recipient: 'reader@example.net' }]);
  });
});
