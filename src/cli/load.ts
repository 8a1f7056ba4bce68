// What CLI commands share: load the config (printing its errors, exit 1, when invalid), open its database, fail with a message.
import { formatConfigErrors, loadConfig } from '../config/loader.ts';
import type { Config } from '../config/types.ts';
import { databaseFile } from '../data-dir.ts';
import { migrations } from '../schema.ts';
import { openDatabase, type Db } from '../store/database.ts';
import { configDirFrom } from './config-dir.ts';
import { exitCodes } from './exit-codes.ts';

/** The config named by --config (or the default), or null after printing `FILE:LINE:COLUMN: reason` lines and setting exit 1. */
export async function loadConfigOrComplain(configOption: string | undefined): Promise<Config | null> {
  const loaded = await loadConfig(configDirFrom(configOption));
  if (!loaded.ok) {
    process.stderr.write(formatConfigErrors(loaded.errors) + '\n');
    process.exitCode = exitCodes.invalidConfig;
    return null;
  }
  return loaded.config;
}

/** The config and the daemon's database (safe while the daemon runs: WAL readers do not block it, writes wait for it). */
export async function openConfigured(configOption: string | undefined): Promise<{ config: Config; db: Db } | null> {
  const config = await loadConfigOrComplain(configOption);
  return config ? { config, db: openDatabase(databaseFile(config), migrations) } : null;
}

export function fail(message: string, code: number = exitCodes.failure): void {
  process.stderr.write(`embargo: ${message}\n`);
  process.exitCode = code;
}

/** The list NAME (or NAME@domain) names, or null after saying which lists exist and setting exit 1. */
export function listNameOrComplain(config: Config, name: string): string | null {
  const listName = name.toLowerCase().replace(/@.*$/, '');
  if (config.lists.has(listName)) return listName;
  fail(`no list named ${name} (lists: ${[...config.lists.keys()].join(', ') || 'none'})`);
  return null;
}
