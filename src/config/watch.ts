// Hot reload: watches the config directory and hands each new valid Config to the daemon, refusing bad edits with their errors.
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from './loader.ts';
import type { Config, ConfigError, ServerConfig } from './types.ts';

/** A changed setting that the running daemon cannot apply without a restart. */
export interface PendingRestart {
  /** e.g. 'smtp.port' */
  field: string;
  /** JSON of the value in use. */
  running: string;
  /** JSON of the value now in the files. */
  configured: string;
}

export interface ReloadInfo {
  /** Settings edited in the files but still running with their old values until a restart; empty when none. */
  restartRequired: PendingRestart[];
  /** One log-worthy line describing restartRequired, or null. */
  restartMessage: string | null;
}

export interface WatchOptions {
  /** A new valid config. Restart-only settings in it keep their running values (see info.restartRequired). */
  onReload: (config: Config, info: ReloadInfo) => void;
  /** An edit that does not validate (or a config directory that went away); the last good config stays in force. */
  onInvalid: (errors: ConfigError[]) => void;
  /** The config the daemon is running on. Without it, the watcher loads one itself as the starting point. */
  initial?: Config;
  /** Quiet time after the last change before reloading (editors write in several steps). Default 200 ms. */
  debounceMs?: number;
  /** How often to compare file stamps as a safety net for missed fs.watch events. Default 1000 ms. */
  pollIntervalMs?: number;
}

/** Settings bound at start: listening sockets and the open database. */
const restartOnly: Array<{ field: string; read: (server: ServerConfig) => unknown; keep: (next: ServerConfig, running: ServerConfig) => void }> = [
  { field: 'smtp.host', read: (server) => server.smtp.host, keep: (next, running) => void (next.smtp.host = running.smtp.host) },
  { field: 'smtp.port', read: (server) => server.smtp.port, keep: (next, running) => void (next.smtp.port = running.smtp.port) },
  { field: 'smtp.tls', read: (server) => server.smtp.tls ?? null, keep: (next, running) => void (next.smtp.tls = running.smtp.tls) },
  { field: 'http.host', read: (server) => server.http.host, keep: (next, running) => void (next.http.host = running.http.host) },
  { field: 'http.port', read: (server) => server.http.port, keep: (next, running) => void (next.http.port = running.http.port) },
  { field: 'http.enabled', read: (server) => server.http.enabled, keep: (next, running) => void (next.http.enabled = running.http.enabled) },
  { field: 'metrics.host', read: (server) => server.metrics.host, keep: (next, running) => void (next.metrics.host = running.metrics.host) },
  { field: 'metrics.port', read: (server) => server.metrics.port, keep: (next, running) => void (next.metrics.port = running.metrics.port) },
  { field: 'metrics.enabled', read: (server) => server.metrics.enabled, keep: (next, running) => void (next.metrics.enabled = running.metrics.enabled) },
  {
    field: 'dataDir',
    read: (server) => server.dataPath,
    keep: (next, running) => {
      next.dataDir = running.dataDir;
      next.dataPath = running.dataPath;
    },
  },
];

/** The restart-only settings that differ between the running server config and `next`. */
export function restartRequiredChanges(running: ServerConfig, next: ServerConfig): PendingRestart[] {
  const changes: PendingRestart[] = [];
  for (const setting of restartOnly) {
    const before = JSON.stringify(setting.read(running));
    const after = JSON.stringify(setting.read(next));
    if (before !== after) changes.push({ field: setting.field, running: before, configured: after });
  }
  return changes;
}

export function watchConfig(configDir: string, options: WatchOptions): { close(): void } {
  const root = path.resolve(configDir);
  const debounceMs = options.debounceMs ?? 200;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const watchers = new Map<string, { watcher: FSWatcher; inode: bigint }>();

  let running: Config | null = options.initial ?? null;
  // Without options.initial the first successful load is the starting point, not a reload.
  let firstLoad = !options.initial;
  let lastStamp: string | null = null;
  let lastPendingKey = '[]';
  let invalidSinceLastGood = false;
  let closed = false;
  let debounce: NodeJS.Timeout | null = null;
  let loading = false;
  let changedWhileLoading = false;

  const schedule = () => {
    if (closed) return;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = null;
      void reload();
    }, debounceMs);
    debounce.unref();
  };

  // fs.watch on a directory sees writes and editors' write-temp-then-rename; a watched directory that is
  // removed (or replaced) is watched again once it exists, which the poll below notices by its inode.
  const ensureWatchers = async () => {
    for (const directory of [root, path.join(root, 'lists'), path.join(root, 'keys')]) {
      const info = await stat(directory, { bigint: true }).catch(() => null);
      const current = watchers.get(directory);
      if (current && (!info || current.inode !== info.ino)) {
        current.watcher.close();
        watchers.delete(directory);
      }
      if (!info?.isDirectory() || watchers.has(directory) || closed) continue;
      try {
        const watcher = watch(directory, { persistent: false }, () => schedule());
        watcher.on('error', () => {
          // The directory went away under the watcher; drop it so the next poll can watch it again.
          watcher.close();
          if (watchers.get(directory)?.watcher === watcher) watchers.delete(directory);
          schedule();
        });
        watchers.set(directory, { watcher, inode: info.ino });
      } catch {
        // Removed between stat and watch: the next poll tries again.
      }
    }
  };

  const reload = async () => {
    if (closed) return;
    if (loading) {
      changedWhileLoading = true;
      return;
    }
    loading = true;
    try {
      const stamp = await stampOf(root, running);
      if (stamp === lastStamp) return;
      lastStamp = stamp;
      let result: Awaited<ReturnType<typeof loadConfig>>;
      try {
        result = await loadConfig(root);
      } catch (failure) {
        // A bug in loading must not take down a running daemon: keep the last good config and tell the admins.
        result = { ok: false, errors: [{ file: path.join(root, 'server.yaml'), line: 1, column: 1, reason: `internal error while loading the config: ${(failure as Error).message}` }] };
      }
      if (closed) return;
      if (!result.ok) {
        firstLoad = false;
        invalidSinceLastGood = true;
        options.onInvalid(result.errors);
        return;
      }
      const previous = running;
      if (firstLoad || !previous) {
        const wasFirst = firstLoad;
        firstLoad = false;
        running = result.config;
        invalidSinceLastGood = false;
        if (!wasFirst) options.onReload(result.config, { restartRequired: [], restartMessage: null });
        return;
      }
      const restartRequired = restartRequiredChanges(previous.server, result.config.server);
      for (const setting of restartOnly) {
        if (restartRequired.some((change) => change.field === setting.field)) setting.keep(result.config.server, previous.server);
      }
      // A touch without a change (or a stamp that moved for an unrelated file) is not a reload.
      const pendingKey = JSON.stringify(restartRequired);
      // After a refused edit, a fix (even back to the old text) is reported, so admins see the config is good again.
      if (pendingKey === lastPendingKey && !invalidSinceLastGood && sameConfig(previous, result.config)) return;
      lastPendingKey = pendingKey;
      invalidSinceLastGood = false;
      running = result.config;
      const restartMessage =
        restartRequired.length > 0
          ? `restart needed to apply ${restartRequired.map((change) => `${change.field} (running ${change.running}, configured ${change.configured})`).join(', ')}`
          : null;
      options.onReload(result.config, { restartRequired, restartMessage });
    } finally {
      loading = false;
      if (changedWhileLoading && !closed) {
        changedWhileLoading = false;
        schedule();
      }
    }
  };

  const poll = setInterval(() => {
    void (async () => {
      await ensureWatchers();
      // When a reload is due or running, it compares stamps itself.
      if (closed || loading || debounce) return;
      const stamp = await stampOf(root, running);
      if (!closed && stamp !== lastStamp) schedule();
    })();
  }, pollIntervalMs);
  poll.unref();

  void (async () => {
    await ensureWatchers();
    if (running) lastStamp = await stampOf(root, running);
    else await reload();
  })();

  return {
    close() {
      closed = true;
      clearInterval(poll);
      if (debounce) clearTimeout(debounce);
      for (const { watcher } of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}

/**
 * A cheap fingerprint of everything the config is made of: which files exist, with inode, size and
 * nanosecond mtime. Key files named from outside keys/ and TLS files are included via the running config.
 */
async function stampOf(root: string, running: Config | null): Promise<string> {
  const files = new Set<string>([path.join(root, 'server.yaml')]);
  for (const sub of ['lists', 'keys']) {
    const directory = path.join(root, sub);
    const entries = await readdir(directory).catch(() => null);
    if (!entries) files.add(directory);
    for (const entry of entries ?? []) files.add(path.join(directory, entry));
  }
  if (running) {
    for (const list of running.lists.values()) for (const member of list.members) if (member.keySource) files.add(member.keySource);
    if (running.server.smtp.tls) {
      files.add(running.server.smtp.tls.key);
      files.add(running.server.smtp.tls.cert);
    }
    if (running.server.keys.passphraseFile) files.add(running.server.keys.passphraseFile);
  }
  const parts = await Promise.all(
    [...files].sort().map(async (file) => {
      const info = await stat(file, { bigint: true }).catch(() => null);
      return info ? `${file}:${info.ino}:${info.size}:${info.mtimeNs}` : `${file}:-`;
    }),
  );
  return parts.join('\n');
}

function sameConfig(a: Config, b: Config): boolean {
  const plain = (config: Config) => JSON.stringify({ server: config.server, lists: [...config.lists.entries()] });
  return plain(a) === plain(b);
}
