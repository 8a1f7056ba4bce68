// Starts and stops the whole daemon: config, database, list keys, SMTP intake and the components other modules add.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Component, ComponentFactory, DaemonContext } from './component.ts';
import { loadConfig } from './config/loader.ts';
import type { Config, ConfigError } from './config/types.ts';
import { watchConfig } from './config/watch.ts';
import type { ListKey } from './crypto/index.ts';
import { databaseFile, keyPassphrase, loadListKey } from './data-dir.ts';
import { migrations } from './schema.ts';
import { startIntakeThread } from './intake/intake-host.ts';
import type { SmtpIntake } from './smtp/server.ts';
import { createDeliveryComponent } from './smtp/delivery.ts';
import { expectOutbound } from './queues/outbound.ts';
import { createSpool } from './queues/spool.ts';
import { createOpenPool } from './lists/open-pool.ts';
import { rehearseFirstPost } from './rehearsal.ts';
import { createPipelineWorker } from './lists/worker.ts';
import { prepareMemberKeys } from './lists/keyring.ts';
import type { Spool } from './queues/spool.ts';
import { openDatabase } from './store/database.ts';
import type { Db } from './store/database.ts';
import { createLogger } from './util/log.ts';
import type { Logger } from './util/log.ts';
import { gauge } from './util/metrics.ts';
import { createHttpComponent } from './web/component.ts';
import { advisoriesComponent } from './advisories/component.ts';
import { createMetricsComponent } from './web/metrics-server.ts';
import { createSchedules } from './ops/schedules.ts';
import { errorMessage } from './util/errors.ts';

const spoolMessages = gauge('embargo_spool_messages', 'Spool rows by state', ['state']);

/** The pipeline's threads that open (decrypt, verify) posts: they load the list keys themselves, from dataDir. */
const openPoolFor = (context: DaemonContext) => () => {
  const { server } = context.config();
  return createOpenPool({ dataDir: server.dataPath, passphrase: keyPassphrase(server) });
};

// ─── Components other modules plug in, one line each, in start order ───────────────────────────────
// Each is `(context: DaemonContext) => Component`; stop runs in reverse order after SMTP has stopped.
const builtinComponents: ComponentFactory[] = [
  // pipeline worker (src/lists/): claims spool rows fairly across sources, opens posts in a thread pool, runs the stages, commits each result once.
  (context) => createPipelineWorker(context, { openPool: openPoolFor(context) }),
  // outbound delivery (src/smtp/): sends queued copies to the relay, wakes on every enqueue.
  (context) => createDeliveryComponent(context),
  // http server (src/web/): public archive, list keys and WKD, /healthz (port reported as 'http').
  (context) => createHttpComponent(context),
  // metrics listener (src/web/): /metrics on its own loopback port, never the public one (port reported as 'metrics').
  (context) => createMetricsComponent(context),
  // advisories (src/advisories/): releases on schedules.embargoRelease, catch-up for late members, the audit trail.
  advisoriesComponent(),
  // scheduled jobs (src/ops/): key-expiry warnings, held-post digest, cleanup, on server.yaml schedules.
  (context) => createSchedules(context),
];
// ────────────────────────────────────────────────────────────────────────────────────────────────────

export interface Daemon {
  config(): Config;
  smtpPort: number;
  /** Set when an http component reported its port. */
  httpPort: number | null;
  /** Set when the metrics listener reported its port. */
  metricsPort: number | null;
  db: Db;
  spool: Spool;
  /** Re-reads the STARTTLS certificate and key (what SIGHUP does; a change of the files is picked up by itself). */
  reloadTls(): void;
  /** Graceful: stop accepting, finish transactions in flight, stop components, close the database. */
  stop(): Promise<void>;
  /** Resolves if a part the daemon cannot run without (SMTP intake) died; the daemon has then stopped itself. */
  failed: Promise<Error>;
}

export interface DaemonOptions {
  configDir: string;
  logger?: Logger;
  /** Extra components after the built-in ones (tests use this to plug in probes). */
  components?: ComponentFactory[];
}

/** Thrown by startDaemon when the config is invalid; the CLI prints `errors` with formatConfigErrors. */
export class ConfigInvalidError extends Error {
  constructor(readonly errors: ConfigError[]) {
    super(`invalid configuration (${errors.length} error${errors.length === 1 ? '' : 's'})`);
    this.name = 'ConfigInvalidError';
  }
}

/**
 * The data directory holds the database and the lists' secret keys: only the daemon's user may enter it. One that
 * already existed with wider permissions (made by hand, restored from a backup) is tightened, and the log says so.
 */
export function tightenDataDir(dataPath: string, logger: Logger): void {
  mkdirSync(dataPath, { recursive: true, mode: 0o700 });
  const mode = statSync(dataPath).mode & 0o777;
  if (mode === 0o700) return;
  chmodSync(dataPath, 0o700);
  logger.warn({ dataDir: dataPath, mode: mode.toString(8), now: '700' }, 'data directory was open to other users; tightened to 0700');
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const configDir = resolve(options.configDir);
  const loaded = await loadConfig(configDir);
  if (!loaded.ok) throw new ConfigInvalidError(loaded.errors);
  let current = loaded.config;
  const logger = options.logger ?? createLogger(current.server.log.level);

  tightenDataDir(current.server.dataPath, logger);
  const db = openDatabase(databaseFile(current), migrations);
  let smtp: SmtpIntake | null = null;
  let watcher: { close(): void } | null = null;
  const started: Component[] = [];
  const attempt = async (what: string, step: () => Promise<void> | void) => {
    try {
      await step();
    } catch (error) {
      logger.error({ step: what, err: errorMessage(error) }, 'error while stopping');
    }
  };
  // Intake stops first so nothing new arrives while the components drain; the database closes last.
  const stopAll = async () => {
    await attempt('config watcher', () => watcher?.close());
    await attempt('smtp', () => smtp?.close());
    for (const component of started.splice(0).reverse()) await attempt(component.name, () => component.stop());
    await attempt('database', () => void (db.open && db.close()));
  };

  try {
    const spool = createSpool(db);
    spoolMessages.readFrom(() =>
      db.open ? Object.entries(spool.countByState()).map(([state, value]) => ({ labels: { state }, value })) : [],
    );
    const requeued = spool.resetProcessing();
    if (requeued > 0) logger.warn({ count: requeued }, 'requeued spool messages left in processing by an earlier stop');

    const keys = new Map<string, Promise<ListKey>>();
    const listKey = (listName: string): Promise<ListKey> => {
      let key = keys.get(listName);
      if (!key) {
        key = loadListKey(current, listName);
        keys.set(listName, key);
        // A failure is not cached: the next call tries again.
        key.catch(() => keys.delete(listName));
      }
      return key;
    };
    for (const list of current.lists.values()) {
      const key = await listKey(list.name);
      logger.info({ list: list.name, fingerprint: key.fingerprint }, 'list key ready');
    }
    // Member keys are parsed and checked, and each list key self-tested, now: not on the first post (which took twice as long as the next).
    const prepareKeys = async (config: Config) => {
      const prepared = await prepareMemberKeys(config, listKey);
      for (const failed of prepared.failedSelfTests) logger.error({ list: failed.list, err: failed.detail }, 'list key self-test failed');
      logger.info({ usable: prepared.usable }, 'member keys ready');
    };
    await prepareKeys(current);

    const spooledListeners: Array<(id: string) => void> = [];
    const reloadListeners: Array<(config: Config) => void> = [];
    const ports = new Map<string, number>();
    const context: DaemonContext = {
      config: () => current,
      db,
      spool,
      logger,
      listKey,
      onSpooled: (listener) => void spooledListeners.push(listener),
      onConfigReload: (listener) => void reloadListeners.push(listener),
      reportListening(name, port) {
        ports.set(name, port);
        logger.info({ port }, `${name} listening`);
      },
    };

    // Intake runs in its own thread with its own database connection: list processing never delays a 250.
    const smtpLogger = logger.child({ component: 'smtp' });
    let reportFailure: (error: Error) => void = () => undefined;
    const failed = new Promise<Error>((resolve) => {
      reportFailure = resolve;
    });
    const intakeStarting = startIntakeThread({
      config: current,
      onFailure: (error) => reportFailure(error),
      databaseFile: databaseFile(current),
      migrations,
      logger: smtpLogger,
      onSpooled: (id) => {
        for (const listener of spooledListeners) listener(id);
      },
      // Delivery may open relay connections while the post arrives and goes through the pipeline.
      onPostArriving: expectOutbound,
    });
    // While the intake thread starts on another core: the first real post then runs on warm code (see rehearsal.ts).
    const rehearsal = rehearseFirstPost(context);
    smtp = await intakeStarting;
    context.reportListening('smtp', smtp.port);
    const rehearsed = await rehearsal;
    if (!rehearsed.ran) logger.info({ reason: rehearsed.reason }, 'start-up rehearsal skipped');
    else if (rehearsed.ok) logger.info({ ms: rehearsed.ms, copies: rehearsed.copies }, 'start-up rehearsal: a post went through the pipeline and delivery');
    else logger.warn({ ms: rehearsed.ms, err: rehearsed.detail }, 'start-up rehearsal failed; the first post may be slow, or fail the same way');
    const intake = smtp;

    for (const factory of [...builtinComponents, ...(options.components ?? [])]) {
      const component = await factory(context);
      await component.start();
      started.push(component);
      logger.debug({ component: component.name }, 'component started');
    }
    watcher = watchConfig(configDir, {
      initial: current,
      onReload(config, info) {
        const previousLists = new Set(current.lists.keys());
        current = config;
        intake.applyConfig(config);
        // A logger passed in by the caller (tests) keeps its own level.
        if (!options.logger) {
          // pino children keep the level they were created with; intake's relays the level to its thread.
          logger.level = config.server.log.level;
          smtpLogger.level = config.server.log.level;
        }
        logger.info({ lists: config.lists.size }, 'config reloaded');
        if (info.restartMessage) logger.warn({ restartRequired: info.restartRequired.map((change) => change.field) }, info.restartMessage);
        prepareKeys(config).catch((error: unknown) =>
          logger.error({ err: errorMessage(error) }, 'member keys could not be prepared'),
        );
        for (const list of config.lists.values()) {
          if (previousLists.has(list.name)) continue;
          listKey(list.name).then(
            (key) => logger.info({ list: list.name, fingerprint: key.fingerprint }, 'list key ready'),
            (error: unknown) =>
              logger.error({ list: list.name, err: errorMessage(error) }, 'list key failed'),
          );
        }
        for (const listener of reloadListeners) {
          try {
            listener(config);
          } catch (error) {
            logger.error({ err: errorMessage(error) }, 'config reload listener failed');
          }
        }
      },
      onInvalid(errors) {
        logger.error(
          { errors: errors.map((error) => `${error.file}:${error.line}: ${error.reason}`) },
          'config change refused; still serving the last good config',
        );
      },
    });

    logger.info({ smtpPort: intake.port, httpPort: ports.get('http') ?? null, metricsPort: ports.get('metrics') ?? null }, 'embargo ready');

    let stopping: Promise<void> | null = null;
    const stop = () => {
      stopping ??= (async () => {
        logger.info('stopping');
        await stopAll();
        logger.info('stopped');
      })();
      return stopping;
    };
    void failed.then((error) => {
      logger.fatal({ err: error.message }, 'smtp intake failed; stopping the daemon');
      return stop();
    });
    return {
      config: () => current,
      smtpPort: intake.port,
      httpPort: ports.get('http') ?? null,
      metricsPort: ports.get('metrics') ?? null,
      db,
      spool,
      reloadTls: () => intake.reloadTls(),
      stop,
      failed,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
