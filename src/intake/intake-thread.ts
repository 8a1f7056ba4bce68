// Body of the SMTP intake thread: its own database connection and event loop, so list processing never slows the 250s.
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config/types.ts';
import { isPostmasterAddress, isRegisteredPoster, resolveListAddress } from '../lists/addresses.ts';
import { openDatabase } from '../store/database.ts';
import type { FromIntakeThread, IntakeThreadData, LogLevelName, ToIntakeThread } from './intake-messages.ts';
import { startSmtpServer } from '../smtp/server.ts';
import type { IntakeLogger } from '../smtp/server.ts';
import { recordMetricsWith } from '../util/metrics.ts';
import { createSpool } from '../queues/spool.ts';
import { errorMessage } from '../util/errors.ts';

const levelValues: Record<LogLevelName, number> = { debug: 20, info: 30, warn: 40, error: 50 };

async function run(port: NonNullable<typeof parentPort>, data: IntakeThreadData): Promise<void> {
  const send = (message: FromIntakeThread) => port.postMessage(message);
  let config: Config = data.config;
  let logLevel = data.logLevel;
  const relay = (level: LogLevelName) => (fields: Record<string, unknown>, message: string) => {
    if (levelValues[level] >= logLevel) send({ type: 'log', level, fields, message });
  };
  const logger: IntakeLogger = { debug: relay('debug'), info: relay('info'), warn: relay('warn'), error: relay('error') };
  // Intake's metrics belong on the daemon's /metrics: this thread's handles send their records there.
  recordMetricsWith({
    increment: (name, labels, by, help) => send({ type: 'increment', name, labels, by, help }),
    observe: (name, seconds, help, buckets) => send({ type: 'observe', name, seconds, help, buckets }),
  });

  const db = openDatabase(data.databaseFile, data.migrations);
  // Lock conflicts come back at once and the group committer waits for the lock without blocking this thread.
  db.pragma('busy_timeout = 0');
  const intake = await startSmtpServer({
    config: () => config,
    spool: createSpool(db),
    // postmaster (RFC 5321 §4.5.1) is the one name at our domain that is not a list address and still takes mail.
    acceptsRecipient: (address) => resolveListAddress(config, address) !== null || isPostmasterAddress(config, address),
    isRegisteredPoster: (recipients, sender) => isRegisteredPoster(config, recipients, sender),
    logger,
    onSpooled: (id) => send({ type: 'spooled', id }),
    onPostArriving: () => send({ type: 'post-arriving' }),
    shutdownTimeoutMs: data.shutdownTimeoutMs,
  }).catch((error: unknown) => {
    db.close();
    throw error;
  });

  port.on('message', (message: ToIntakeThread) => {
    if (message.type === 'config') {
      config = message.config;
      logLevel = message.logLevel;
      intake.applyConfig(config);
    } else if (message.type === 'reload-tls') {
      intake.reloadTls();
    } else if (message.type === 'close') {
      intake
        .close()
        .catch((error: unknown) => logger.error({ err: errorMessage(error) }, 'smtp close failed'))
        .finally(() => {
          db.close();
          send({ type: 'closed' });
          port.close();
        });
    }
  });
  send({ type: 'listening', port: intake.port });
}

if (parentPort) {
  const port = parentPort;
  run(port, workerData as IntakeThreadData).catch((error: unknown) => {
    port.postMessage({ type: 'fatal', message: errorMessage(error) } satisfies FromIntakeThread);
    port.close();
  });
}
