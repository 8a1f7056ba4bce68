// Backups: a consistent copy of the database (SQLite online backup), the data directory's keys and secrets and the config, with a manifest of checksums; and their restore.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import type { Config } from '../config/types.ts';
import { backupDatabase } from '../store/database.ts';

export const manifestFile = 'manifest.json';
const manifestFormat = 'embargo-backup/1';
const databaseName = 'embargo.sqlite';

export interface ManifestEntry {
  /** Relative to the backup directory, with `/`: `data/…` or `config/…`. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: typeof manifestFormat;
  embargoVersion: string;
  createdAt: string;
  source: { configDir: string; dataDir: string };
  files: ManifestEntry[];
}

export type BackupOutcome = { ok: true; manifest: Manifest } | { ok: false; reason: string };
export type RestoreOutcome = { ok: true; restored: ManifestEntry[]; configRestored: boolean } | { ok: false; reason: string };

function sha256Of(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Regular files under `root` (relative paths), skipping symbolic links and whatever `skip` says. */
function filesUnder(root: string, skip: (absolute: string) => boolean = () => false): string[] {
  const found: string[] = [];
  const walk = (directory: string) => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const absolute = join(directory, entry.name);
      if (skip(absolute)) continue;
      if (entry.isDirectory()) walk(absolute);
      else if (entry.isFile()) found.push(relative(root, absolute));
    }
  };
  if (existsSync(root)) walk(root);
  return found.sort();
}

function isEmptyOrMissing(directory: string): boolean {
  return !existsSync(directory) || readdirSync(directory).length === 0;
}

/** Copies with owner-only modes: secrets stay 0600 in 0700 directories, in the backup as in the data directory. */
function copyPrivate(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
  copyFileSync(from, to);
  chmodSync(to, 0o600);
}

function entryFor(backupDir: string, path: string): ManifestEntry {
  const file = join(backupDir, ...path.split('/'));
  return { path, bytes: lstatSync(file).size, sha256: sha256Of(file) };
}

/**
 * Writes a backup into `backupDir` (missing or empty) while the daemon runs: data/embargo.sqlite (online backup),
 * every other file of the data directory (list secret keys, replaced keys, DKIM keys, the server secret), the config
 * directory, and manifest.json with each file's size and SHA-256.
 */
export async function backup(config: Config, backupDir: string, embargoVersion: string): Promise<BackupOutcome> {
  if (!isEmptyOrMissing(backupDir)) return { ok: false, reason: `${backupDir} is not empty; give a new directory for each backup` };
  const dataDir = config.server.dataPath;
  const databaseFile = join(dataDir, databaseName);
  if (!existsSync(databaseFile)) return { ok: false, reason: `no database at ${databaseFile}: nothing to back up (has the daemon ever run with this config?)` };
  mkdirSync(backupDir, { recursive: true, mode: 0o700 });
  chmodSync(backupDir, 0o700);
  const paths: string[] = [];

  // The WAL and shared-memory files belong to the live database; the online backup is the consistent copy of all three.
  const isDatabaseFile = (absolute: string) => [databaseFile, `${databaseFile}-wal`, `${databaseFile}-shm`, `${databaseFile}-journal`].includes(absolute);
  for (const file of filesUnder(dataDir, isDatabaseFile)) {
    copyPrivate(join(dataDir, file), join(backupDir, 'data', file));
    paths.push(['data', ...file.split(sep)].join('/'));
  }
  mkdirSync(join(backupDir, 'data'), { recursive: true, mode: 0o700 });
  await backupDatabase(databaseFile, join(backupDir, 'data', databaseName));
  paths.push(`data/${databaseName}`);

  // A data directory inside the config directory is already in data/.
  const configDir = config.server.configDir;
  for (const file of filesUnder(configDir, (absolute) => absolute === dataDir || absolute.startsWith(dataDir + sep))) {
    copyPrivate(join(configDir, file), join(backupDir, 'config', file));
    paths.push(['config', ...file.split(sep)].join('/'));
  }

  const manifest: Manifest = {
    format: manifestFormat,
    embargoVersion,
    createdAt: new Date().toISOString(),
    source: { configDir, dataDir },
    files: paths.sort().map((path) => entryFor(backupDir, path)),
  };
  writeFileSync(join(backupDir, manifestFile), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
  return { ok: true, manifest };
}

/** The backup's manifest, or why it cannot be used: missing, not a manifest, or a file that is missing or differs. */
export function verifyBackup(backupDir: string): { ok: true; manifest: Manifest } | { ok: false; reason: string } {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(join(backupDir, manifestFile), 'utf8')) as Manifest;
  } catch (error) {
    return { ok: false, reason: `${join(backupDir, manifestFile)} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
  }
  if (manifest.format !== manifestFormat || !Array.isArray(manifest.files)) return { ok: false, reason: `${manifestFile} is not an Embargo backup manifest (${manifestFormat})` };
  for (const entry of manifest.files) {
    if (entry.path.split('/').some((part) => part === '..' || part === '') || !/^(data|config)\//.test(entry.path)) {
      return { ok: false, reason: `${manifestFile} names a path outside the backup: ${entry.path}` };
    }
    const file = join(backupDir, ...entry.path.split('/'));
    if (!existsSync(file)) return { ok: false, reason: `${entry.path} is missing from the backup` };
    if (sha256Of(file) !== entry.sha256 || lstatSync(file).size !== entry.bytes) return { ok: false, reason: `${entry.path} does not match its checksum in ${manifestFile}` };
  }
  if (!manifest.files.some((entry) => entry.path === `data/${databaseName}`)) return { ok: false, reason: `the backup has no data/${databaseName}` };
  return { ok: true, manifest };
}

/** Puts the backup's config/ into `configDir` when that has no server.yaml yet (a whole machine lost); false if it has one. */
export function restoreConfig(backupDir: string, manifest: Manifest, configDir: string): boolean {
  if (existsSync(join(configDir, 'server.yaml'))) return false;
  for (const entry of manifest.files.filter((each) => each.path.startsWith('config/'))) {
    copyPrivate(join(backupDir, ...entry.path.split('/')), join(configDir, ...entry.path.split('/').slice(1)));
  }
  return true;
}

/** Copies the backup's data/ into the config's data directory, which must be empty, and checks every copy against the manifest. */
export function restoreData(config: Config, backupDir: string, manifest: Manifest): RestoreOutcome {
  const dataDir = config.server.dataPath;
  if (!isEmptyOrMissing(dataDir)) return { ok: false, reason: `the data directory ${dataDir} is not empty; restore only into an empty one (move the old one away first)` };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  const restored: ManifestEntry[] = [];
  for (const entry of manifest.files.filter((each) => each.path.startsWith('data/'))) {
    const target = join(dataDir, ...entry.path.split('/').slice(1));
    copyPrivate(join(backupDir, ...entry.path.split('/')), target);
    if (sha256Of(target) !== entry.sha256) return { ok: false, reason: `${target} does not match its checksum after copying` };
    restored.push(entry);
  }
  return { ok: true, restored, configRestored: false };
}
