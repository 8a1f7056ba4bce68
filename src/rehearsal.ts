// The start-up rehearsal: one signed, encrypted post through the real pipeline and delivery, on a throw-away database, to an SMTP sink in this process.
//
// Why: a fresh process runs everything for the first time on the first post (V8 compiles and tiers up the stages,
// the queue, nodemailer's composer and SMTP client), which made the first advisory after a restart half again as slow
// as the next. The rehearsal pays that before the daemon says it is ready, and shows a delivery setup that cannot work
// (an unreadable DKIM key) at start rather than on the first post. Nothing of it is stored, sent, logged or counted:
// its database is in memory, its copies go to a sink on loopback that discards them, its keys are generated for it.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { DaemonContext } from './component.ts';
import { listSchema } from './config/schema.ts';
import type { Config, ListConfig, Member } from './config/types.ts';
import * as crypto from './crypto/index.ts';
import type { ListKey } from './crypto/index.ts';
import { createPipelineWorker } from './lists/worker.ts';
import { listOutbound } from './queues/outbound.ts';
import { createSpool } from './queues/spool.ts';
import { loadOrCreateServerSecret } from './queues/verp.ts';
import { migrations } from './schema.ts';
import { createDelivery } from './smtp/delivery.ts';
import { loopbackPeerOptions } from './smtp/loopback-peer.ts';
import { openDatabase } from './store/database.ts';
import { errorMessage } from './util/errors.ts';
import type { Logger } from './util/log.ts';
import { uncounted } from './util/metrics.ts';

export type RehearsalResult =
  | { ran: false; reason: string }
  | { ran: true; ok: true; ms: number; copies: number }
  | { ran: true; ok: false; ms: number; detail: string };

/** Addresses under the reserved .invalid domain (RFC 2606): nothing here can name a real mailbox or list. */
const rehearsalDomain = 'rehearsal.invalid';
const poster = `poster@${rehearsalDomain}`;
const reader = `reader@${rehearsalDomain}`;
/** The post and its copies are small: the point is to run the code, not to move bytes. */
const contentLines = 64;
/** A rehearsal that does not finish in this time is abandoned: the daemon starts without it. */
const deadlineMs = 20_000;
/** How long stopping its worker, delivery and sink may take before the daemon goes on without waiting. */
const teardownMs = 5_000;

/** A sink on loopback that takes every message and keeps nothing; it counts what it took. */
async function startSink(): Promise<{ port: number; received: () => number; close(): Promise<void> }> {
  let received = 0;
  const server = new SMTPServer({
    ...loopbackPeerOptions,
    onData(stream, _session, callback) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        received += 1;
        callback(null, 'discarded');
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.server.address() as AddressInfo).port,
    received: () => received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The rehearsal's list: defaults from the list schema, the list key of a real list, a poster and a reader. */
function rehearsalList(config: Config, name: string, posterKey: ListKey, readerKey: ListKey): ListConfig {
  const member = (email: string, key: ListKey, roles: Member['roles']): Member => ({ email, address: email, roles, armoredKey: key.armoredPublicKey });
  return {
    ...listSchema.parse({ kind: 'announce', archive: 'private' }),
    name,
    address: `${name}@${config.server.domain}`,
    file: config.server.file,
    members: [member(poster, posterKey, ['poster', 'recipient']), member(reader, readerKey, ['recipient'])],
  };
}

/** The post as a member's PGP/MIME client sends it: the entity signed by the poster and encrypted to the list key. */
async function buildPost(list: ListConfig, posterKey: ListKey, listKey: ListKey): Promise<Buffer> {
  const date = new Date().toUTCString();
  const messageId = `<rehearsal-${Date.now()}@${rehearsalDomain}>`;
  const content = Buffer.from(`Content-Type: text/plain; charset=us-ascii\r\n\r\n${'A start-up rehearsal line, discarded at the sink.\r\n'.repeat(contentLines)}`);
  const headers: Array<[string, string]> = [['From', poster], ['To', list.address], ['Date', date], ['Message-ID', messageId]];
  const fanout = await crypto.sealFanout({
    listKey: posterKey,
    content,
    protectedHeaders: [['Subject', 'rehearsal'], ...headers],
    note: '',
    outerHeaders: headers,
    recipients: [{ address: list.address, key: await crypto.parseMemberKey(listKey.armoredPublicKey) }],
  });
  return crypto.assembleCopy(fanout, fanout.copies[0]);
}

/**
 * Rehearses a post to the first list (with that list's key, which decrypts it and signs the copies) and waits until
 * its copies reached the sink. Never throws: a failure is the result, for the daemon to log.
 */
export async function rehearseFirstPost(context: Pick<DaemonContext, 'config' | 'listKey' | 'logger'>): Promise<RehearsalResult> {
  const config = context.config();
  const source = config.lists.values().next().value;
  if (!source) return { ran: false, reason: 'no list is configured' };
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const name = 'embargo-rehearsal';
  // Silent: its log lines would read as real mail handled (the result is logged once, by the caller).
  const logger: Logger = context.logger.child({ component: 'rehearsal' }, { level: 'silent' });
  try {
    // Inside: the teardown's last bookkeeping is not counted either.
    return await uncounted(async () => {
      const cleanups: Array<() => Promise<void> | void> = [];
      try {
        return await rehearse(source, cleanups);
      } finally {
        // Bounded: a rehearsal stuck in a stage must not keep the daemon from starting.
        const teardown = (async () => {
          for (const cleanup of cleanups.reverse()) await Promise.resolve().then(cleanup).catch(() => undefined);
        })();
        await Promise.race([teardown, new Promise((resolve) => setTimeout(resolve, teardownMs).unref())]);
      }
    });
  } catch (error) {
    return { ran: true, ok: false, ms: elapsed(), detail: errorMessage(error) };
  }

  async function rehearse(source: ListConfig, cleanups: Array<() => Promise<void> | void>): Promise<RehearsalResult> {
    const db = openDatabase(':memory:', migrations);
    cleanups.push(() => void db.close());
    const [listKey, posterKey, readerKey] = await Promise.all([
      context.listKey(source.name),
      crypto.generateInMemoryKey({ name: 'rehearsal poster', address: poster }),
      crypto.generateInMemoryKey({ name: 'rehearsal reader', address: reader }),
    ]);
    cleanups.push(() => {
      crypto.forgetInMemoryKey(posterKey);
      crypto.forgetInMemoryKey(readerKey);
    });
    const sink = await startSink();
    cleanups.push(() => sink.close());
    const list = rehearsalList(config, name, posterKey, readerKey);
    const rehearsalConfig: Config = {
      server: { ...config.server, relay: { ...config.server.relay, host: '127.0.0.1', port: sink.port, secure: false, auth: undefined, concurrency: 2, retrySchedule: [3_600] } },
      lists: new Map([[name, list]]),
    };
    const spool = createSpool(db);
    const rehearsalContext: DaemonContext = {
      config: () => rehearsalConfig,
      db,
      spool,
      logger,
      listKey: (listName) => (listName === name ? Promise.resolve(listKey) : context.listKey(listName)),
      onSpooled: () => undefined,
      onConfigReload: () => undefined,
      reportListening: () => undefined,
    };
    const delivery = createDelivery({ db, config: () => rehearsalConfig, logger, secret: loadOrCreateServerSecret(config.server.dataPath) });
    const worker = createPipelineWorker(rehearsalContext);
    await delivery.start();
    cleanups.push(() => delivery.stop());
    await worker.start();
    cleanups.push(() => worker.stop());

    const raw = await buildPost(list, posterKey, listKey);
    const id = spool.insert({ mailFrom: poster, rcptTo: [list.address], remoteAddress: '127.0.0.1', helo: 'embargo-rehearsal', raw, sourceClass: 'poster' });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), deadlineMs);
    });
    try {
      const finished = await Promise.race([worker.drain().then(() => delivery.whenIdle()), deadline]);
      if (finished === 'late') return { ran: true, ok: false, ms: elapsed(), detail: `not finished after ${deadlineMs / 1000} s` };
    } finally {
      clearTimeout(timer);
    }
    const row = spool.get(id);
    if (row?.state !== 'done') return { ran: true, ok: false, ms: elapsed(), detail: `the post ended ${row?.state ?? 'missing'}: ${row?.reason ?? row?.outcome ?? 'no reason recorded'}` };
    const expected = list.members.length;
    if (sink.received() !== expected) {
      const unsent = listOutbound(db, { states: ['deferred', 'failed'], limit: 1 })[0];
      return { ran: true, ok: false, ms: elapsed(), detail: `${sink.received()} of ${expected} copies were delivered${unsent?.lastReply ? `; delivery said: ${unsent.lastReply}` : ''}` };
    }
    return { ran: true, ok: true, ms: elapsed(), copies: expected };
  }
}
