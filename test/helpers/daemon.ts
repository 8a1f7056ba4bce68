// Starts a real Embargo daemon for tests, in-process or as a child process, on a temporary config with ephemeral ports.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { parse, stringify } from 'yaml';
import { startDaemon } from '../../src/daemon.ts';
import { fixtureConfig } from './config-dir.ts';
import type { ComponentFactory } from '../../src/component.ts';
import type { Daemon } from '../../src/daemon.ts';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface TestConfigOptions {
  /** Config directory to copy; default: the fixture test/fixtures/config/. */
  from?: string;
  /** Where outbound mail goes (a fake relay peer). Default 127.0.0.1:9, where nothing listens: delivery defers. */
  relay?: { host: string; port: number };
  /** Deep-merged into server.yaml after ports, relay and dataDir are set (e.g. { smtp: { maxRecipients: 3 } }). */
  server?: Record<string, unknown>;
  /** List files to add or replace: list name → YAML text (or an object, written as YAML). */
  lists?: Record<string, string | Record<string, unknown>>;
  /** Remove these shipped lists from the copy. */
  removeLists?: string[];
  /** Any other files to write: path relative to the config dir → contents. */
  files?: Record<string, string | Buffer>;
}

export interface TestConfig {
  /** Temporary directory holding config/ and data/. */
  root: string;
  configDir: string;
  dataDir: string;
  dbFile: string;
  serverFile: string;
  /** Rewrites server.yaml by merging `patch` into it (a hot-reload edit). */
  editServer(patch: Record<string, unknown>): void;
  /** Removes the temporary directory. */
  cleanup(): void;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

export function deepMerge(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    const existing = result[key];
    result[key] = isPlainObject(existing) && isPlainObject(value) ? deepMerge(existing, value) : value;
  }
  return result;
}

/** A copy of a config dir with smtp/http on port 0, relay where the test says, and dataDir in a temp dir. */
export function makeTestConfig(options: TestConfigOptions = {}): TestConfig {
  const root = mkdtempSync(join(tmpdir(), 'embargo-test-'));
  const configDir = join(root, 'config');
  const dataDir = join(root, 'data');
  const source = options.from ?? fixtureConfig;
  cpSync(source, configDir, { recursive: true, filter: (path) => !/\/data(\/|$)/.test(path.slice(source.length)) });
  const serverFile = join(configDir, 'server.yaml');
  const original = existsSync(serverFile) ? ((parse(readFileSync(serverFile, 'utf8')) as Record<string, unknown>) ?? {}) : {};
  let server = deepMerge(original, {
    dataDir,
    smtp: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    metrics: { host: '127.0.0.1', port: 0 },
    relay: options.relay ?? { host: '127.0.0.1', port: 9 },
    // The weekly and daily jobs would otherwise fire whenever a test happens to run at 09:00 on a Monday:
    // tests that want them set their own schedule or call the job with a driven clock.
    schedules: { keyExpiryWarning: '59 59 23 31 12 *', heldDigest: '59 59 23 31 12 *', cleanup: '59 59 23 31 12 *' },
  });
  if (options.server) server = deepMerge(server, options.server);
  writeFileSync(serverFile, stringify(server));

  mkdirSync(join(configDir, 'lists'), { recursive: true });
  for (const name of options.removeLists ?? []) rmSync(join(configDir, 'lists', `${name}.yaml`), { force: true });
  for (const [name, contents] of Object.entries(options.lists ?? {})) {
    writeFileSync(join(configDir, 'lists', `${name}.yaml`), typeof contents === 'string' ? contents : stringify(contents));
  }
  for (const [path, contents] of Object.entries(options.files ?? {})) {
    mkdirSync(dirname(join(configDir, path)), { recursive: true });
    writeFileSync(join(configDir, path), contents);
  }

  return {
    root,
    configDir,
    dataDir,
    dbFile: join(dataDir, 'embargo.sqlite'),
    serverFile,
    editServer(patch) {
      const current = parse(readFileSync(serverFile, 'utf8')) as Record<string, unknown>;
      writeFileSync(serverFile, stringify(deepMerge(current, patch)));
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** One parsed JSON log line of the daemon. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface TestDaemon {
  mode: 'in-process' | 'child';
  config: TestConfig;
  smtpPort: number;
  httpPort: number | null;
  /** The separate metrics listener's port (null when metrics.enabled is false). */
  metricsPort: number | null;
  /** The Daemon object (in-process mode only). */
  daemon: Daemon | null;
  /** The child process (child mode only). */
  child: ChildProcess | null;
  /** Log lines so far (JSON-parsed). */
  logs(): LogLine[];
  /** Resolves when a log line matching `predicate` appears (or rejects after timeoutMs). */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Graceful stop (SIGTERM for a child). Removes the temp dir unless the config was passed in or keepFiles is set. */
  stop(options?: { keepFiles?: boolean }): Promise<void>;
  /** Child mode: sends a signal (e.g. 'SIGKILL' for crash tests) and resolves when the process has exited. Keeps files. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface StartTestDaemonOptions extends TestConfigOptions {
  mode?: 'in-process' | 'child';
  /** Reuse an existing test config (e.g. to restart after kill); the caller then owns its cleanup. */
  config?: TestConfig;
  /** In-process only: extra components. */
  components?: ComponentFactory[];
  /** Child only: extra environment variables. */
  env?: Record<string, string>;
  /** How long to wait for the daemon to report ready. Default 30 s. */
  startTimeoutMs?: number;
}

function createLogCollector() {
  const lines: LogLine[] = [];
  const waiters: Array<{ predicate: (line: LogLine) => boolean; resolve(line: LogLine): void }> = [];
  let partial = '';
  const push = (text: string) => {
    partial += text;
    let newline: number;
    while ((newline = partial.indexOf('\n')) >= 0) {
      const raw = partial.slice(0, newline);
      partial = partial.slice(newline + 1);
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        line = { msg: raw, unparsed: true };
      }
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  };
  const waitFor = (predicate: (line: LogLine) => boolean, timeoutMs = 30_000, failed?: Promise<never>) => {
    const found = lines.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a log line; last lines:\n${lines.slice(-10).map((line) => JSON.stringify(line)).join('\n')}`)), timeoutMs);
      waiters.push({
        predicate,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      failed?.catch((error: unknown) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  };
  return { lines, push, waitFor };
}

const isReady = (line: LogLine) => line.msg === 'embargo ready';

export async function startTestDaemon(options: StartTestDaemonOptions = {}): Promise<TestDaemon> {
  const ownsConfig = !options.config;
  const config = options.config ?? makeTestConfig(options);
  const logs = createLogCollector();
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;

  if ((options.mode ?? 'in-process') === 'in-process') {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logs.push(chunk.toString('utf8'));
        callback();
      },
    });
    const logger = pino({ level: process.env.EMBARGO_TEST_LOG_LEVEL ?? 'info', base: { service: 'embargo' } }, sink);
    let daemon: Daemon;
    try {
      daemon = await startDaemon({ configDir: config.configDir, logger, components: options.components });
    } catch (error) {
      if (ownsConfig) config.cleanup();
      throw error;
    }
    let stopped = false;
    return {
      mode: 'in-process',
      config,
      smtpPort: daemon.smtpPort,
      httpPort: daemon.httpPort,
      metricsPort: daemon.metricsPort,
      daemon,
      child: null,
      logs: () => logs.lines,
      waitForLog: (predicate, timeoutMs) => logs.waitFor(predicate, timeoutMs),
      async stop(stopOptions = {}) {
        if (!stopped) {
          stopped = true;
          await daemon.stop();
        }
        if (ownsConfig && !stopOptions.keepFiles) config.cleanup();
      },
      async kill() {
        throw new Error('kill() needs mode: child');
      },
    };
  }

  const child = spawn(process.execPath, [join(repoRoot, 'bin/embargo.js'), 'serve', '--config', config.configDir], {
    cwd: repoRoot,
    env: { ...process.env, CI: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => logs.push(chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const failed = exited.then((code) => {
    throw new Error(`embargo serve exited with ${code} before it was ready:\n${stderr}`);
  });
  let ready: LogLine;
  try {
    ready = await logs.waitFor(isReady, startTimeoutMs, failed);
  } catch (error) {
    child.kill('SIGKILL');
    if (ownsConfig) config.cleanup();
    throw error;
  }
  const killAndWait = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    mode: 'child',
    config,
    smtpPort: Number(ready.smtpPort),
    httpPort: typeof ready.httpPort === 'number' ? ready.httpPort : null,
    metricsPort: typeof ready.metricsPort === 'number' ? ready.metricsPort : null,
    daemon: null,
    child,
    logs: () => logs.lines,
    waitForLog: (predicate, timeoutMs) => logs.waitFor(predicate, timeoutMs),
    async stop(stopOptions = {}) {
      await killAndWait('SIGTERM');
      if (ownsConfig && !stopOptions.keepFiles) config.cleanup();
    },
    kill: (signal = 'SIGKILL') => killAndWait(signal),
  };
}

/**
 * A public list file (for `lists:` of makeTestConfig) whose members receive only, each with a shipped demo key:
 * for tests about the daemon's plumbing (disks, relay, config) rather than about the list engine.
 */
export function publicListOf(members: Array<{ email: string; keyFile: string }>, settings: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    description: 'Applications',
    kind: 'public',
    archive: 'public',
    ...settings,
    members: members.map(({ email, keyFile }) => ({ email, key: `../keys/${keyFile}`, roles: ['recipient'] })),
  };
}

/** The spool states of `ids`, read from the database file until every one is `state` or the time is up. */
export async function waitForSpoolState(dbFile: string, ids: string[], state: string, timeoutMs = 30_000): Promise<string[]> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(dbFile, { readonly: true });
  try {
    const stateOf = db.prepare('SELECT state FROM spool WHERE id = ?');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = ids.map((id) => (stateOf.get(id) as { state: string } | undefined)?.state ?? 'missing');
      if (states.every((each) => each === state) || Date.now() > deadline) return states;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    db.close();
  }
}
