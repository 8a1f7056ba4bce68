// Runs SMTP intake in a worker thread and bridges it to the daemon: spool notices, logs, metrics, config reloads, shutdown.
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/types.ts';
import type { Migration } from '../store/migrations.ts';
import type { Logger } from '../util/log.ts';
import { metrics } from '../util/metrics.ts';
import { threadBootstrap } from '../util/thread-bootstrap.ts';
import type { FromIntakeThread, IntakeThreadData, ToIntakeThread } from './intake-messages.ts';
import type { SmtpIntake } from '../smtp/server.ts';

export interface IntakeThreadOptions {
  config: Config;
  databaseFile: string;
  migrations: readonly Migration[];
  logger: Logger;
  onSpooled(id: string): void;
  /** A registered poster's message has started to arrive (a hint for delivery, see SmtpServerOptions.onPostArriving). */
  onPostArriving?(): void;
  /** The thread died after it started listening (the daemon cannot take mail any more). */
  onFailure?(error: Error): void;
  shutdownTimeoutMs?: number;
}

const bootstrap = threadBootstrap(import.meta.url, 'intake-thread');

/** Starts intake in its own thread; resolves once it listens (rejects if it cannot, e.g. the port is taken). */
export function startIntakeThread(options: IntakeThreadOptions): Promise<SmtpIntake> {
  const { logger } = options;
  const workerData: IntakeThreadData = {
    config: options.config,
    databaseFile: options.databaseFile,
    migrations: options.migrations,
    logLevel: logger.levelVal,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 10_000,
  };
  const worker = new Worker(bootstrap, { eval: true, workerData });
  const post = (message: ToIntakeThread) => worker.postMessage(message);
  let closed: (() => void) | null = null;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));

  return new Promise<SmtpIntake>((resolve, reject) => {
    let listening = false;
    worker.on('error', (error) => {
      logger.error({ err: error.message }, 'smtp intake thread failed');
      if (!listening) reject(error);
    });
    worker.once('exit', (code) => {
      if (!listening) reject(new Error(`smtp intake thread exited with code ${code} before listening`));
      else if (!closed) options.onFailure?.(new Error(`smtp intake thread stopped unexpectedly (exit code ${code})`));
    });
    worker.on('message', (message: FromIntakeThread) => {
      switch (message.type) {
        case 'spooled':
          options.onSpooled(message.id);
          break;
        case 'post-arriving':
          options.onPostArriving?.();
          break;
        case 'log':
          logger[message.level](message.fields, message.message);
          break;
        case 'increment':
          metrics.increment(message.name, message.labels, message.by, message.help);
          break;
        case 'observe':
          metrics.observe(message.name, message.seconds, message.help, message.buckets);
          break;
        case 'closed':
          closed?.();
          break;
        case 'fatal':
          if (!listening) reject(new Error(`smtp intake could not start: ${message.message}`));
          else logger.error({ err: message.message }, 'smtp intake thread failed');
          break;
        case 'listening': {
          listening = true;
          let closing: Promise<void> | null = null;
          resolve({
            port: message.port,
            applyConfig(config) {
              post({ type: 'config', config, logLevel: logger.levelVal });
            },
            reloadTls() {
              post({ type: 'reload-tls' });
            },
            close() {
              closing ??= (async () => {
                const done = new Promise<void>((resolveClosed) => {
                  closed = resolveClosed;
                });
                post({ type: 'close' });
                await Promise.race([done, exited]);
                // The thread ends by itself once its server and database are closed; this only guards against a leak.
                const timer = setTimeout(() => void worker.terminate(), 2_000);
                await exited;
                clearTimeout(timer);
              })();
              return closing;
            },
          });
          break;
        }
      }
    });
  });
}
