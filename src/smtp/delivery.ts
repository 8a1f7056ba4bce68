// Sends due outbound rows to the configured relay with pooled nodemailer connections, classifying each outcome (like ZoneMTA's sender).
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import nodemailer from 'nodemailer';
import cron from 'node-cron';
import type { ScheduledTask } from 'node-cron';
import type { Config, ServerConfig } from '../config/types.ts';
import type { Db } from '../store/database.ts';
import { statement, withoutFsync } from '../store/statements.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { counter, gauge, histogram } from '../util/metrics.ts';
import { isSuspended } from '../queues/bounce-scores.ts';
import { installFastDataScan } from './data-scan.ts';
import { createRelayWarmer, type RelayWarmer } from './relay-warmer.ts';
import { dkimSigning } from './dkim.ts';
import {
  claimDueRows,
  expireOld,
  loadCopyParts,
  loadPayload,
  markDeferred,
  markFinal,
  markSentRows,
  nextDueAt,
  oldestPendingAgeMs,
  outboundStates,
  queueCounts,
  suspendedReply,
  onOutboundEnqueued,
  onOutboundExpected,
  requeueInFlight,
  type OutboundRow,
} from '../queues/outbound.ts';
import { loadOrCreateServerSecret, verpAddress } from '../queues/verp.ts';

const copiesDelivered = counter('embargo_delivered_total', 'Copies accepted by the relay');
const attemptsDeferred = counter('embargo_deferred_total', 'Delivery attempts deferred (4xx, network error, timeout)');
const copiesFailed = counter('embargo_failed_total', 'Copies the relay refused permanently (5xx)');
const copiesExpired = counter('embargo_expired_total', 'Copies given up after the maximum age');
const deliverySeconds = histogram('embargo_delivery_seconds', 'Time for one copy to be accepted by the relay');
const queueDepth = gauge('embargo_queue_depth', 'Outbound queue rows by state', ['state']);
const queueOldestAgeSeconds = gauge('embargo_queue_oldest_age_seconds', 'Age of the oldest outbound row not yet delivered');

export interface DeliveryTimeouts {
  /** TCP connect. */
  connectionMs: number;
  /** From connect to the relay's 220 greeting. */
  greetingMs: number;
  /** Inactivity on an open connection (a stalled reply to MAIL, RCPT or the end of DATA). */
  socketMs: number;
}

export const defaultDeliveryTimeouts: DeliveryTimeouts = { connectionMs: 30_000, greetingMs: 30_000, socketMs: 120_000 };

export interface DeliveryOptions {
  db: Db;
  config: () => Config;
  logger: Logger;
  /** The server secret that signs VERP tokens (loadOrCreateServerSecret). */
  secret: Buffer;
  timeouts?: Partial<DeliveryTimeouts>;
  /** The clock, in milliseconds; tests may move it. */
  now?: () => number;
}

export interface Delivery {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Wakes the sender after an enqueue, instead of waiting for the next sweep. */
  kick(): void;
  /** Resolves once nothing is in flight and no row is due now (rows deferred to later do not count). */
  whenIdle(): Promise<void>;
}

/** What one attempt's failure means for the row. */
export interface Classification {
  outcome: 'defer' | 'fail';
  /** The relay's reply, or what went wrong on the way (kept on the row for admins). */
  reply: string;
}

interface SmtpError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  command?: string;
}

/** Commands whose 5xx reply is about this message or recipient; a 5xx anywhere else is our or the relay's setup. */
const messageCommands = new Set(['MAIL FROM', 'RCPT TO', 'DATA']);

/**
 * Network errors, timeouts and 4xx replies defer; a 5xx reply to MAIL FROM, RCPT TO or DATA is permanent.
 * A 5xx while connecting or authenticating (wrong password, relay refusing us) defers instead: the message and the
 * recipient are fine, the setup is not, and failing every row for it would throw the whole queue away.
 */
export function classifyDeliveryError(error: unknown): Classification {
  const smtp = (error ?? {}) as SmtpError;
  const reply = (smtp.response ?? (smtp.message || String(error))).replace(/\s+/g, ' ').trim();
  const code = typeof smtp.responseCode === 'number' ? smtp.responseCode : null;
  if (code !== null && code >= 500 && code < 600) {
    const atMessage = smtp.command ? messageCommands.has(smtp.command) : true;
    if (atMessage) return { outcome: 'fail', reply };
    return { outcome: 'defer', reply: `${smtp.command ?? 'connection'}: ${reply}` };
  }
  if (code === null && smtp.code === 'EENVELOPE') {
    // nodemailer refused the envelope itself (an address it cannot send); retrying cannot help.
    return { outcome: 'fail', reply };
  }
  const prefix = code === null && smtp.code ? `${smtp.code}: ` : '';
  return { outcome: 'defer', reply: `${prefix}${reply}` };
}

/** Seconds to wait after the given attempt number (1-based); the last entry of the schedule repeats. */
export function retryDelaySeconds(schedule: readonly number[], attempt: number): number {
  return schedule[Math.min(Math.max(attempt, 1), schedule.length) - 1] ?? 60;
}

const loopbackHost = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;
/** Longest sleep between looks at the queue, in case a row became due without a kick (another process, a clock jump). */
const maxIdleSleepMs = 30_000;

/** How long nodemailer's pool keeps an idle relay connection (its default, named here: the warm-up relies on it). */
const pooledIdleMs = 4 * 60_000;

type Transport = ReturnType<typeof nodemailer.createTransport>;

/** How one attempt ended, waiting to be written in the next turn's transaction. */
type AttemptOutcome = { id: number; row: OutboundRow; reply: string } & (
  | { state: 'sent' | 'failed' | 'expired' | 'suspended' }
  | { state: 'deferred'; nextAttemptAt: number }
);

/** The relay password from server.yaml: inline, from relay.auth.passFile (resolved at load), or from the variable relay.auth.passEnv. */
export function relayPassword(server: ServerConfig): string {
  const auth = server.relay.auth;
  if (!auth) throw new Error('relay.auth is not set');
  if (auth.passEnv) {
    const value = process.env[auth.passEnv];
    if (value === undefined) throw new Error(`relay.auth.passEnv names ${auth.passEnv}, which is not set`);
    return value;
  }
  if (auth.passFile) return readFileSync(auth.passFile, 'utf8').replace(/\r?\n$/, '');
  return auth.pass ?? '';
}

export function createDelivery(options: DeliveryOptions): Delivery {
  const { db, logger, secret } = options;
  installFastDataScan();
  const now = options.now ?? Date.now;
  const timeouts: DeliveryTimeouts = { ...defaultDeliveryTimeouts, ...options.timeouts };
  const log = logger.child({ component: 'delivery' });

  let transport: Transport | null = null;
  let transportKey = '';
  let running = false;
  let pumping = false;
  let pumpAgain = false;
  let wakeTimer: NodeJS.Timeout | null = null;
  let sweepTask: ScheduledTask | null = null;
  const inFlight = new Map<number, Promise<void>>();
  const pendingOutcomes: AttemptOutcome[] = [];
  // Copies of one fan-out share their payload: read it from SQLite once and keep it while any copy is being sent.
  const payloadCache = new Map<number, { body: Buffer; users: number }>();
  let idleWaiters: Array<() => void> = [];
  let stopListening: (() => void) | null = null;
  let stopExpecting: (() => void) | null = null;
  /** Connections opened ahead of a fan-out, for the current transport (plain or STARTTLS relays only). */
  let warmer: RelayWarmer | null = null;
  /** Until when the pool probably still holds open connections: the last copy's attempt plus the pool's idle time. */
  let pooledUntil = 0;

  function relaySettings() {
    return options.config().server.relay;
  }

  /** Throws (the copy is deferred, with the reason on its row) when a configured password file, variable or DKIM key cannot be read. */
  function currentTransport(): Transport {
    const relay = relaySettings();
    const config = options.config();
    const key = JSON.stringify([relay.host, relay.port, relay.secure, relay.auth, relay.concurrency, config.server.dkim?.selector]);
    if (transport && key === transportKey) return transport;
    const dkim = dkimSigning(config);
    const previous = transport;
    warmer?.close();
    // Implicit TLS (secure) needs the handshake on the socket nodemailer makes itself: no warm connections then.
    warmer = relay.secure ? null : createRelayWarmer({ host: relay.host, port: relay.port });
    transport = nodemailer.createTransport({
      pool: true,
      host: relay.host,
      port: relay.port,
      secure: relay.secure,
      ...(relay.auth ? { auth: { user: relay.auth.user, pass: relayPassword(config.server) } } : {}),
      // Signed as the copy leaves, after it is final: the body stays byte-identical and the signature covers From.
      ...(dkim ? { dkim } : {}),
      maxConnections: relay.concurrency,
      maxMessages: 1000,
      idleTimeout: pooledIdleMs,
      ...(warmer ? { getSocket: warmer.getSocket } : {}),
      connectionTimeout: timeouts.connectionMs,
      greetingTimeout: timeouts.greetingMs,
      socketTimeout: timeouts.socketMs,
      // A relay on loopback has no network path to attack, and local MTAs ship self-signed certificates.
      tls: { rejectUnauthorized: !loopbackHost.test(relay.host) },
      name: options.config().server.domain,
    });
    transportKey = key;
    if (previous) previous.close();
    return transport;
  }

  function registerGauges(): void {
    queueDepth.readFrom(() => {
      const counts = queueCounts(db);
      return outboundStates.map((state) => ({ labels: { state }, value: counts[state] }));
    });
    queueOldestAgeSeconds.readFrom(() => [
      { labels: {}, value: Math.round(oldestPendingAgeMs(db, now()) / 1000) },
    ]);
  }

  function schedulePump(): void {
    if (pumping) {
      pumpAgain = true;
      return;
    }
    setImmediate(pump);
  }

  /**
   * One write transaction per turn: record the outcomes that came in since the last turn, then claim due rows for
   * the free slots. An outcome lost in a crash before its commit only means that row is sent again (at-least-once).
   */
  function pump(): void {
    // After stop(), only outcomes still waiting are written (stop flushes them before the database closes).
    if (pumping || (!running && pendingOutcomes.length === 0)) return;
    pumping = true;
    let retryOutcomesSoon = false;
    const outcomes = pendingOutcomes.splice(0);
    try {
      const at = now();
      // Bookkeeping only (see withoutFsync): a power cut can undo the last outcomes, whose copies are then sent again.
      const rows = withoutFsync(db, () =>
        db.transaction((): OutboundRow[] => {
          markSentRows(db, outcomes.filter((outcome) => outcome.state === 'sent'), at);
          for (const outcome of outcomes) applyOutcome(outcome, at);
          return running ? claimDueRows(db, relaySettings().concurrency - inFlight.size, at) : [];
        }).immediate(),
      );
      for (const outcome of outcomes) countOutcome(outcome);
      for (const row of rows) {
        const attempt = send(row)
          .then(
            (outcome) => void pendingOutcomes.push(outcome),
            (error: unknown) => {
              // send() turns every failure into an outcome; reaching this is a bug, and the row is retried.
              log.error({ row: row.id, err: errorMessage(error) }, 'delivery attempt failed unexpectedly');
              void pendingOutcomes.push({ id: row.id, state: 'deferred', reply: 'internal error', nextAttemptAt: now() + 60_000, row });
            },
          )
          .finally(() => {
            inFlight.delete(row.id);
            schedulePump();
          });
        inFlight.set(row.id, attempt);
      }
    } catch (error) {
      // Typically the database was busy beyond its timeout: keep the outcomes (else their rows would sit in
      // 'sending' until the next start) and try again shortly.
      pendingOutcomes.unshift(...outcomes);
      retryOutcomesSoon = true;
      log.error({ err: errorMessage(error) }, 'delivery bookkeeping failed; retrying in a second');
    } finally {
      pumping = false;
    }
    if (pumpAgain && !retryOutcomesSoon) {
      pumpAgain = false;
      setImmediate(pump);
    }
    armWakeTimer(retryOutcomesSoon ? 1_000 : maxIdleSleepMs);
    notifyIdle();
  }

  /** Every outcome but 'sent' (those are written together with markSentRows). */
  function applyOutcome(outcome: AttemptOutcome, at: number): void {
    if (outcome.state === 'deferred') markDeferred(db, outcome.id, outcome.reply, outcome.nextAttemptAt, at);
    else if (outcome.state !== 'sent') markFinal(db, outcome.id, outcome.state, outcome.reply, at);
  }

  /**
   * A fan-out is likely soon (onOutboundExpected): when no pooled connection is probably open, open some now, so the
   * relay's greeting (and its greeting pause) passes while the pipeline still works on the post.
   */
  function prepareConnections(): void {
    if (!running || now() < pooledUntil) return;
    try {
      currentTransport();
    } catch {
      return;
    }
    warmer?.warm(relaySettings().concurrency - inFlight.size);
  }

  function countOutcome(outcome: AttemptOutcome): void {
    const { row } = outcome;
    // The relay took or refused the copy: the connection it came on stays in the pool until it idles out.
    if (outcome.state === 'sent' || outcome.state === 'failed') pooledUntil = now() + pooledIdleMs - 30_000;
    switch (outcome.state) {
      case 'sent':
        copiesDelivered.inc();
        // Who received what, for the record (never the subject): the spool id ties it to the post, the row to the audit trail.
        log.info({ row: row.id, spoolId: row.spoolId, list: row.list, recipient: row.recipient, attempts: row.attempts, reply: outcome.reply }, 'delivered');
        break;
      case 'deferred':
        attemptsDeferred.inc();
        log.info({ row: row.id, list: row.list, attempts: row.attempts, retryAt: new Date(outcome.nextAttemptAt).toISOString(), reply: outcome.reply }, 'delivery deferred');
        break;
      case 'failed':
        copiesFailed.inc();
        log.warn({ row: row.id, list: row.list, recipient: row.recipient, reply: outcome.reply }, 'delivery failed permanently');
        break;
      case 'expired':
        copiesExpired.inc();
        log.warn({ row: row.id, list: row.list, recipient: row.recipient, reply: outcome.reply }, 'delivery expired');
        break;
      case 'suspended':
        log.info({ row: row.id, list: row.list }, 'not sent: member suspended after bounces');
        break;
    }
  }

  function armWakeTimer(longest: number = maxIdleSleepMs): void {
    if (wakeTimer) clearTimeout(wakeTimer);
    wakeTimer = null;
    if (!running) return;
    let delay = longest;
    if (inFlight.size < relaySettings().concurrency) {
      const due = nextDueAt(db);
      if (due !== null) delay = Math.min(delay, Math.max(0, due - now()));
    }
    wakeTimer = setTimeout(pump, delay);
    wakeTimer.unref();
  }

  function notifyIdle(): void {
    if (inFlight.size > 0 || pendingOutcomes.length > 0 || idleWaiters.length === 0) return;
    const due = nextDueAt(db);
    if (due !== null && due <= now() && running) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  function takePayload(payloadId: number): Buffer | null {
    const cached = payloadCache.get(payloadId);
    if (cached) {
      cached.users += 1;
      return cached.body;
    }
    const body = loadPayload(db, payloadId);
    if (body) payloadCache.set(payloadId, { body, users: 1 });
    return body;
  }

  function releasePayload(payloadId: number): void {
    const cached = payloadCache.get(payloadId);
    if (!cached) return;
    cached.users -= 1;
    if (cached.users <= 0) payloadCache.delete(payloadId);
  }

  /** One attempt for one row; never throws: every ending is an outcome for the next write turn. */
  async function send(row: OutboundRow): Promise<AttemptOutcome> {
    const started = now();
    if (isSuspended(db, row.list, row.recipient)) {
      return { id: row.id, state: 'suspended', reply: suspendedReply, row };
    }
    const parts = loadCopyParts(db, row.id);
    if (!parts) return { id: row.id, state: 'failed', reply: 'row was deleted while being sent', row };
    const payload = parts.payloadId !== null ? takePayload(parts.payloadId) : null;
    try {
      if (parts.payloadId !== null && !payload) {
        log.error({ row: row.id, list: row.list }, 'outbound row has no payload');
        return { id: row.id, state: 'failed', reply: 'message content missing: its payload row was deleted', row };
      }
      const config = options.config();
      const from = verpAddress(secret, row.list, config.server.domain, row.id);
      const chunks = payload ? [parts.head, payload, parts.tail] : [parts.head, parts.tail];
      const info = await currentTransport().sendMail({
        envelope: { from, to: [row.recipient] },
        // Streamed, so a big fan-out does not hold one concatenated copy per connection in memory.
        raw: Readable.from(chunks.filter((chunk) => chunk.length > 0), { objectMode: false }),
        // Only for nodemailer's own bookkeeping (a raw message is sent as is); without it, nodemailer makes a random one per copy.
        ...(row.messageId ? { messageId: `<${row.messageId}>` } : {}),
      });
      deliverySeconds.observe((now() - started) / 1000);
      return { id: row.id, state: 'sent', reply: String(info.response ?? '250 accepted'), row };
    } catch (error) {
      return failureOutcome(row, error);
    } finally {
      if (parts.payloadId !== null && payload) releasePayload(parts.payloadId);
    }
  }

  function failureOutcome(row: OutboundRow, error: unknown): AttemptOutcome {
    const relay = relaySettings();
    const { outcome, reply } = classifyDeliveryError(error);
    const finished = now();
    if (outcome === 'fail') return { id: row.id, state: 'failed', reply, row };
    if (finished - (row.retriedAt ?? row.createdAt) > relay.maxAgeHours * 3_600_000) {
      return { id: row.id, state: 'expired', reply: `expired after ${row.attempts} attempts; last reply: ${reply}`, row };
    }
    const delay = retryDelaySeconds(relay.retrySchedule, row.attempts) * 1000;
    return { id: row.id, state: 'deferred', reply, nextAttemptAt: finished + delay, row };
  }

  function sweep(): void {
    try {
      const expired = expireOld(db, relaySettings().maxAgeHours * 3_600_000, now());
      if (expired > 0) {
        copiesExpired.inc(expired);
        log.warn({ expired }, 'outbound rows expired');
      }
    } catch (error) {
      log.error({ err: errorMessage(error) }, 'outbound expiry sweep failed');
    }
    schedulePump();
  }

  return {
    async start() {
      if (running) return;
      const requeued = requeueInFlight(db, now());
      if (requeued > 0) log.warn({ requeued }, 'rows left in flight by a previous run are queued again (they may arrive twice)');
      registerGauges();
      running = true;
      stopListening = onOutboundEnqueued(schedulePump);
      stopExpecting = onOutboundExpected(prepareConnections);
      const schedules = options.config().server.schedules;
      sweepTask = cron.schedule(schedules.retrySweep, sweep, { name: 'outbound-retry-sweep', noOverlap: true });
      sweep();
    },

    async stop() {
      if (!running) return;
      running = false;
      stopListening?.();
      stopListening = null;
      stopExpecting?.();
      stopExpecting = null;
      warmer?.close();
      warmer = null;
      if (wakeTimer) clearTimeout(wakeTimer);
      wakeTimer = null;
      if (sweepTask) await sweepTask.destroy();
      sweepTask = null;
      // Give in-flight copies a moment to finish; whatever is cut off is deferred now or requeued at the next start.
      const grace = new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref());
      await Promise.race([Promise.allSettled([...inFlight.values()]), grace]);
      transport?.close({ force: true });
      await Promise.allSettled([...inFlight.values()]);
      pump();
      transport = null;
      transportKey = '';
      notifyIdle();
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    },

    kick() {
      schedulePump();
    },

    whenIdle() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        notifyIdle();
        if (running) schedulePump();
      });
    },
  };
}

/** The daemon component: delivery with the server secret from the data directory (created on first start). */
export function createDeliveryComponent(context: { config: () => Config; db: Db; logger: Logger }): Delivery & { readonly name: string } {
  const secret = loadOrCreateServerSecret(context.config().server.dataPath);
  const delivery = createDelivery({ db: context.db, config: context.config, logger: context.logger, secret });
  return { name: 'delivery', ...delivery };
}
