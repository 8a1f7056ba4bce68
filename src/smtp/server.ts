// SMTP intake: accepts mail only for configured list addresses and postmaster, applies cheap limits, and replies 250 only after the spool commit.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/types.ts';
import { counter, histogram } from '../util/metrics.ts';
import { bigMessageBytes, collectGarbage } from '../util/memory.ts';
import { createBackpressure } from './backpressure.ts';
import type { BackpressureDecision } from './backpressure.ts';
import { createRateLimiter } from './rate-limit.ts';
import { isLockConflict } from '../queues/spool.ts';
import type { Spool, SpoolEntry } from '../queues/spool.ts';
import { lineBreakOf, receivedField } from '../queues/trace.ts';
import { errorMessage } from '../util/errors.ts';

const smtpRefused = counter('embargo_smtp_refused_total', 'SMTP refusals by reason and reply code', ['code', 'reason']);
const smtpConnections = counter('embargo_smtp_connections_total', 'SMTP connections accepted');
const smtpReceived = counter('embargo_smtp_received_total', 'Messages received (end of DATA), whether stored or refused');
const smtpSpooled = counter('embargo_smtp_spooled_total', 'Messages committed to the spool');
const spoolStoreFailures = counter('embargo_spool_store_failures_total', 'Spool commits that failed (answered 451)');
const spoolCommitBatchSize = histogram('embargo_spool_commit_batch_size', 'Messages per spool transaction', [1, 2, 5, 10, 20, 50, 100]);
const spoolCommitSeconds = histogram('embargo_spool_commit_seconds', 'Time from end of DATA to spool commit');

type LogMethod = (fields: Record<string, unknown>, message: string) => void;

/** The part of a pino logger intake uses (the intake thread relays these calls to the daemon's logger). */
export interface IntakeLogger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
}

export interface SmtpServerOptions {
  /** Read on every command, so a config reload (new lists, limits) applies to running connections. */
  config(): Config;
  spool: Spool;
  /** Whether mail for this envelope recipient is taken (a list address, postmaster): the list engine's rules, handed in. */
  acceptsRecipient(address: string): boolean;
  /** Whether the envelope sender is registered to post to a list among the recipients: a scheduling hint only. */
  isRegisteredPoster(recipients: string[], sender: string): boolean;
  logger: IntakeLogger;
  /** Called after each message is committed, so the pipeline worker wakes up. */
  onSpooled?(id: string): void;
  /**
   * Called when a registered poster's message starts (DATA): a post is probably coming, so delivery may open relay
   * connections while it arrives and is processed. A hint only: nothing depends on it, and a forged sender costs no
   * more than connections that close unused.
   */
  onPostArriving?(): void;
  /** How long a message waits for another connection's write lock before the client gets 451. Default 5 s. */
  maxLockWaitMs?: number;
  /** How long shutdown waits for transactions in flight before cutting connections. Default 10 s. */
  shutdownTimeoutMs?: number;
}

export interface SmtpIntake {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Applies a reloaded config: size limit and TLS certificate (list set and limits are read live anyway). */
  applyConfig(config: Config): void;
  /** Re-reads the TLS certificate and key (SIGHUP); they are also re-read when the files change. */
  reloadTls(): void;
  /** Stops accepting, lets transactions in flight finish (bounded wait), then closes every connection. */
  close(): Promise<void>;
}

/** How often the certificate files' stamps are compared. */
const tlsPollIntervalMs = 1_000;

/** An error carrying the SMTP reply code smtp-server sends for it. */
function smtpError(code: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode: code });
}

interface TlsFiles {
  key: Buffer;
  cert: Buffer;
}

function readTls(config: Config): TlsFiles | null {
  const tls = config.server.smtp.tls;
  if (!tls) return null;
  // Relative paths are relative to server.yaml, the file that names them (absolute ones stay as they are).
  const base = dirname(config.server.file);
  return { key: readFileSync(resolve(base, tls.key)), cert: readFileSync(resolve(base, tls.cert)) };
}

/**
 * Group commit: messages that finish DATA in the same event-loop turn share one transaction (one fsync).
 * When another connection holds the write lock, the batch waits without blocking the event loop (SQLite's own
 * busy handler would sleep the thread in steps of up to 100 ms) and messages arriving meanwhile join it.
 */
function createGroupCommitter(spool: Spool, maxLockWaitMs: number) {
  type Pending = { entry: SpoolEntry; since: number; resolve(id: string): void; reject(error: unknown): void };
  let pending: Pending[] = [];
  let scheduled = false;

  const schedule = (delayMs: number) => {
    if (scheduled) return;
    scheduled = true;
    if (delayMs === 0) setImmediate(flush);
    else setTimeout(flush, delayMs);
  };

  function flush() {
    scheduled = false;
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    try {
      const ids = spool.insertMany(batch.map((item) => item.entry));
      batch.forEach((item, index) => item.resolve(ids[index]));
      spoolCommitBatchSize.observe(batch.length);
    } catch (batchError) {
      if (isLockConflict(batchError) && performance.now() - batch[0].since < maxLockWaitMs) {
        pending = batch.concat(pending);
        schedule(1);
        return;
      }
      if (batch.length === 1) {
        batch[0].reject(batchError);
        return;
      }
      // One bad entry must not fail its neighbours: retry each alone.
      for (const item of batch) {
        try {
          item.resolve(spool.insert(item.entry));
        } catch (error) {
          item.reject(error);
        }
      }
    }
  }

  return (entry: SpoolEntry): Promise<string> =>
    new Promise((resolvePromise, rejectPromise) => {
      pending.push({ entry, since: performance.now(), resolve: resolvePromise, reject: rejectPromise });
      schedule(0);
    });
}

export async function startSmtpServer(options: SmtpServerOptions): Promise<SmtpIntake> {
  const { spool, logger } = options;
  const initial = options.config();
  const smtpSettings = () => options.config().server.smtp;
  const limiter = createRateLimiter(() => smtpSettings().rateLimit);
  const backpressure = createBackpressure(
    spool,
    () => ({ ...smtpSettings().rateLimit, freeSpaceReserveMiB: smtpSettings().freeSpaceReserveMiB }),
    () => options.config().server.dataPath,
  );
  /** Counts and logs a backpressure refusal; returns the error smtp-server answers with. */
  const refusedByBackpressure = (decision: Exclude<BackpressureDecision, { ok: true }>, session: SMTPServerSession) => {
    smtpRefused.inc({ reason: decision.reason, code: String(decision.code) });
    logger.info({ cid: session.id, remoteAddress: session.remoteAddress, reason: decision.reason, code: decision.code }, 'smtp message refused by backpressure');
    return smtpError(decision.code, decision.message);
  };
  const store = createGroupCommitter(spool, options.maxLockWaitMs ?? 5_000);
  const counted = new Set<string>();
  let closing = false;
  let inFlight = 0;
  let drained: (() => void) | null = null;
  const tls = readTls(initial);
  let servedTls = tls;
  let watchedTlsFiles: string[] = [];

  /**
   * Re-reads the certificate and key (renewed on disk, or SIGHUP). The pair is checked before it is used: a renewal
   * caught between writing the key and the certificate, or an unreadable file, keeps the previous certificate.
   */
  function reloadTls(config: Config, reason: string): void {
    let next: TlsFiles | null;
    try {
      next = readTls(config);
    } catch (error) {
      logger.error({ reason, err: errorMessage(error) }, 'smtp tls files unreadable; keeping the previous certificate');
      return;
    }
    if (!next) return;
    if (!tls) {
      logger.warn({}, 'smtp tls added to the config: restart to offer STARTTLS');
      return;
    }
    if (servedTls && next.key.equals(servedTls.key) && next.cert.equals(servedTls.cert)) return;
    try {
      createSecureContext({ key: next.key, cert: next.cert });
    } catch (error) {
      logger.error({ reason, err: errorMessage(error) }, 'smtp tls key and certificate do not fit together; keeping the previous certificate');
      return;
    }
    server.updateSecureContext({ key: next.key, cert: next.cert });
    servedTls = next;
    logger.info({ reason }, 'smtp tls certificate reloaded');
  }

  /** Polls the files' stamps (which follows symlinks, as certbot's live/ paths are), so a renewal needs no restart. */
  function watchTlsFiles(config: Config): void {
    const settings = config.server.smtp.tls;
    const files = settings && tls ? [settings.key, settings.cert].map((file) => resolve(dirname(config.server.file), file)) : [];
    if (files.join('\0') === watchedTlsFiles.join('\0')) return;
    for (const file of watchedTlsFiles) unwatchFile(file);
    watchedTlsFiles = files;
    for (const file of files) {
      watchFile(file, { interval: tlsPollIntervalMs, persistent: false }, () => reloadTls(options.config(), 'file changed'));
    }
  }

  const finishTransaction = () => {
    inFlight--;
    if (inFlight === 0 && drained) drained();
  };

  const server = new SMTPServer({
    name: initial.server.domain,
    banner: 'Embargo mailing lists ready',
    size: initial.server.smtp.maxMessageBytes,
    // We enforce the size in onData to send our own 552 text; the library would otherwise answer for us.
    rejectOversized: false,
    disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    // Without this smtp-server offers STARTTLS with its own built-in self-signed certificate.
    hideSTARTTLS: !tls,
    ...(tls ? { key: tls.key, cert: tls.cert } : {}),
    authOptional: true,
    disableReverseLookup: true,
    socketTimeout: initial.server.smtp.socketTimeoutSeconds * 1000,
    closeTimeout: options.shutdownTimeoutMs ?? 10_000,
    logger: false,

    onConnect(session: SMTPServerSession, callback: (error?: Error | null) => void) {
      const address = session.remoteAddress;
      if (closing) return callback(smtpError(421, '4.3.2 shutting down, try again later'));
      const decision = limiter.connect(address);
      if (!decision.ok) {
        smtpRefused.inc({ reason: 'connection-rate', code: String(decision.code) });
        logger.info({ cid: session.id, remoteAddress: address, code: decision.code }, 'smtp connection refused by rate limit');
        return callback(smtpError(decision.code, decision.message));
      }
      counted.add(session.id);
      smtpConnections.inc();
      logger.debug({ cid: session.id, remoteAddress: address }, 'smtp connection');
      callback();
    },

    onClose(session: SMTPServerSession) {
      if (counted.delete(session.id)) limiter.disconnected(session.remoteAddress);
    },

    onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (error?: Error | null) => void) {
      if (closing) return callback(smtpError(421, '4.3.2 shutting down, try again later'));
      const decision = limiter.message(session.remoteAddress);
      if (!decision.ok) {
        smtpRefused.inc({ reason: 'message-rate', code: String(decision.code) });
        logger.info({ cid: session.id, remoteAddress: session.remoteAddress }, 'smtp message refused by rate limit');
        return callback(smtpError(decision.code, decision.message));
      }
      const declaredSize = Number((address.args || {}).SIZE ?? 0);
      const pressure = backpressure.beforeMessage(session.remoteAddress ?? null, Number.isSafeInteger(declaredSize) ? declaredSize : 0);
      if (!pressure.ok) return callback(refusedByBackpressure(pressure, session));
      callback();
    },

    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (error?: Error | null) => void) {
      const config = options.config();
      if (session.envelope.rcptTo.length >= config.server.smtp.maxRecipients) {
        smtpRefused.inc({ reason: 'too-many-recipients', code: '452' });
        return callback(smtpError(452, '4.5.3 too many recipients'));
      }
      if (!options.acceptsRecipient(address.address)) {
        smtpRefused.inc({ reason: 'unknown-recipient', code: '550' });
        logger.info({ cid: session.id, remoteAddress: session.remoteAddress }, 'smtp recipient refused: no such list');
        return callback(smtpError(550, '5.1.1 no such list here'));
      }
      callback();
    },

    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (error?: Error | null, message?: string) => void) {
      inFlight++;
      const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      const rcptTo = session.envelope.rcptTo.map((recipient) => recipient.address);
      const fromRegisteredPoster = mailFrom !== '' && options.isRegisteredPoster(rcptTo, mailFrom);
      if (fromRegisteredPoster) options.onPostArriving?.();
      const limit = smtpSettings().maxMessageBytes;
      const chunks: Buffer[] = [];
      let received = 0;
      let finished = false;
      const finish = (error: Error | null, message?: string) => {
        if (finished) return;
        finished = true;
        clearTimeout(deadline);
        finishTransaction();
        callback(error, message);
      };
      // The idle timeout restarts with every byte, so a client trickling one byte at a time would hold the connection
      // (and a transaction slot) forever: DATA as a whole gets smtp.dataTimeoutSeconds, then 451 and the connection closes.
      const deadline = setTimeout(() => {
        if (finished) return;
        finished = true;
        finishTransaction();
        chunks.length = 0;
        smtpRefused.inc({ reason: 'data-timeout', code: '451' });
        logger.info({ cid: session.id, remoteAddress: session.remoteAddress, size: received }, 'smtp data deadline passed; connection closed');
        const connection = [...server.connections].find((candidate: { id?: string }) => candidate.id === session.id) as
          | { send(code: number, text: string): void; close(): void }
          | undefined;
        connection?.send(451, '4.4.2 message data not received in time; closing connection');
        connection?.close();
      }, smtpSettings().dataTimeoutSeconds * 1000);

      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        // Keep reading to the end of DATA (the protocol needs it) but stop holding bytes past the limit.
        if (!finished && received <= limit) chunks.push(chunk);
      });
      stream.on('error', (error: Error) => {
        logger.info({ cid: session.id, err: error.message }, 'smtp data stream failed');
        finish(smtpError(451, '4.3.0 temporarily unable to store message'));
      });
      stream.on('end', () => {
        if (finished) return;
        clearTimeout(deadline);
        smtpReceived.inc();
        if (stream.sizeExceeded || received > limit) {
          smtpRefused.inc({ reason: 'too-big', code: '552' });
          logger.info({ cid: session.id, size: received, limit }, 'smtp message refused: too big');
          return finish(smtpError(552, `5.3.4 message exceeds the maximum size of ${limit} bytes`));
        }
        const pressure = backpressure.beforeStore(received);
        if (!pressure.ok) return finish(refusedByBackpressure(pressure, session));
        // The id is taken now so the Received field (RFC 5321 4.4) can name it; the field joins the pieces in the one
        // concatenation the message needs anyway, so a big message is not copied a second time for it.
        const spoolId = spool.newId();
        const trace = receivedField({
          helo: session.hostNameAppearsAs ?? null,
          remoteAddress: session.remoteAddress ?? null,
          domain: options.config().server.domain,
          protocol: session.transmissionType,
          smtpUtf8: (session.envelope as { smtpUtf8?: boolean }).smtpUtf8 === true,
          spoolId,
          date: new Date(),
          lineBreak: lineBreakOf(chunks[0]),
        });
        const entry: SpoolEntry = {
          id: spoolId,
          mailFrom,
          rcptTo,
          // For the pipeline's scheduling only: a registered poster's mail goes first within its turn.
          sourceClass: !mailFrom ? 'bounce' : fromRegisteredPoster ? 'poster' : 'other',
          remoteAddress: session.remoteAddress ?? null,
          helo: session.hostNameAppearsAs ?? null,
          raw: Buffer.concat([trace, ...chunks], trace.length + received),
        };
        // The joined copy is what gets stored; the pieces can go now.
        chunks.length = 0;
        const started = performance.now();
        store(entry).then(
          (id) => {
            smtpSpooled.inc();
            spoolCommitSeconds.observe((performance.now() - started) / 1000);
            logger.info({ cid: session.id, spoolId: id, size: received, recipients: entry.rcptTo.length }, 'message spooled');
            finish(null, `2.0.0 queued as ${id}`);
            try {
              options.onSpooled?.(id);
            } catch (error) {
              logger.error({ spoolId: id, err: errorMessage(error) }, 'onSpooled callback failed');
            }
            // A big message leaves its copies here (pieces, joined bytes); collected now, that memory is free before the
            // pipeline, in the main thread, starts on the same message.
            if (received >= bigMessageBytes) setImmediate(collectGarbage);
          },
          (error: unknown) => {
            spoolStoreFailures.inc();
            logger.error({ cid: session.id, err: errorMessage(error) }, 'spool store failed');
            finish(smtpError(451, '4.3.0 temporarily unable to store message'));
          },
        );
      });
    },
  });

  server.on('error', (error: Error) => {
    logger.debug({ err: error.message }, 'smtp connection error');
  });

  const listenSettings = initial.server.smtp;
  await new Promise<void>((resolvePromise, rejectPromise) => {
    const onError = (error: Error) => rejectPromise(error);
    server.server.once('error', onError);
    server.listen(listenSettings.port, listenSettings.host, () => {
      server.server.removeListener('error', onError);
      resolvePromise();
    });
  });
  const bound = server.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : listenSettings.port;
  watchTlsFiles(initial);

  return {
    port,
    applyConfig(config) {
      // smtp-server reads options.size on every EHLO, MAIL FROM and DATA.
      server.options.size = config.server.smtp.maxMessageBytes;
      reloadTls(config, 'config reloaded');
      watchTlsFiles(config);
    },
    reloadTls() {
      reloadTls(options.config(), 'reload requested');
    },
    async close() {
      if (closing) return;
      closing = true;
      for (const file of watchedTlsFiles) unwatchFile(file);
      const timeoutMs = options.shutdownTimeoutMs ?? 10_000;
      const serverClosed = new Promise<void>((resolvePromise) => server.close(() => resolvePromise()));
      if (inFlight > 0) {
        await new Promise<void>((resolvePromise) => {
          const timer = setTimeout(resolvePromise, timeoutMs);
          drained = () => {
            clearTimeout(timer);
            resolvePromise();
          };
        });
      }
      // Idle connections would otherwise hold the shutdown until smtp-server's close timeout.
      for (const connection of server.connections) {
        connection.send(421, '4.3.2 shutting down');
        connection.close();
      }
      await serverClosed;
    },
  };
}
