// A temporary copy of a config directory whose files tests write as exact text, so reported line numbers can be checked.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The config tests start from: a fixture of the demo config kept under test/, so an admin's edit of config/ breaks no test. */
export const fixtureConfig = fileURLToPath(new URL('../fixtures/config', import.meta.url));

export interface ConfigDir {
  root: string;
  /** The config directory (root/config). */
  dir: string;
  /** Absolute path of a file in the config directory. */
  path(relative: string): string;
  /** Writes `text` to a file in the config directory (creating folders). */
  write(relative: string, text: string): string;
  /** Writes like an editor that saves to a temporary file and renames it over the original. */
  writeByRename(relative: string, text: string): string;
  read(relative: string): string;
  remove(relative: string): void;
  cleanup(): void;
}

/** Copies `from` (default: the fixture test/fixtures/config/) into a new temporary directory. `empty: true` starts with nothing. */
export function makeConfigDir(options: { from?: string; empty?: boolean } = {}): ConfigDir {
  const root = mkdtempSync(join(tmpdir(), 'embargo-config-'));
  const dir = join(root, 'config');
  if (options.empty) mkdirSync(dir);
  else cpSync(options.from ?? fixtureConfig, dir, { recursive: true });
  const path = (relative: string) => join(dir, relative);
  return {
    root,
    dir,
    path,
    write(relative, text) {
      mkdirSync(dirname(path(relative)), { recursive: true });
      writeFileSync(path(relative), text);
      return path(relative);
    },
    writeByRename(relative, text) {
      const target = path(relative);
      const temporary = join(dirname(target), `.${relative.split('/').pop()}.tmp${process.pid}`);
      writeFileSync(temporary, text);
      renameSync(temporary, target);
      return target;
    },
    read(relative) {
      return readFileSync(path(relative), 'utf8');
    },
    remove(relative) {
      rmSync(path(relative), { recursive: true, force: true });
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A minimal valid server.yaml, one key per line (line numbers: domain 1, dataDir 2, smtp 3-5, relay 6-8, http 9-11, admins 12-13). */
export const minimalServerYaml = `domain: lists.example.org
dataDir: ../data
smtp:
  host: 127.0.0.1
  port: 2525
relay:
  host: 127.0.0.1
  port: 2526
http:
  host: 127.0.0.1
  port: 8025
admins:
  - postmaster@lists.example.org
`;
