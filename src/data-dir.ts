// Where the daemon's state lives under dataDir: the database file and the lists' key pairs (with the passphrase server.yaml names).
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Config, ServerConfig } from './config/types.ts';
import { ensureListKey } from './crypto/index.ts';
import type { ListKey } from './crypto/index.ts';

/** The list keys' passphrase, from the environment variable or file server.yaml names (none: keys are unprotected on disk). */
export function keyPassphrase(server: ServerConfig): string | undefined {
  const { passphraseEnv, passphraseFile } = server.keys;
  if (passphraseEnv) {
    const value = process.env[passphraseEnv];
    if (value === undefined) throw new Error(`keys.passphraseEnv names ${passphraseEnv}, which is not set`);
    return value;
  }
  if (passphraseFile) {
    return readFileSync(resolve(dirname(server.file), passphraseFile), 'utf8').replace(/\r?\n$/, '');
  }
  return undefined;
}

/** Loads (or on first use generates, mode 0600) the key pair of one list. */
export function loadListKey(config: Config, listName: string): Promise<ListKey> {
  return ensureListKey({
    dataDir: config.server.dataPath,
    listName,
    domain: config.server.domain,
    algorithm: config.server.keys.algorithm,
    passphrase: keyPassphrase(config.server),
  });
}

export function databaseFile(config: Config): string {
  return join(config.server.dataPath, 'embargo.sqlite');
}
