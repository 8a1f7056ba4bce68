// `embargo list-key import NAME FILE`: list key rotation — a new secret key replaces the old (kept beside it); public keys and wrong lists change nothing.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeTestConfig } from '../helpers/daemon.ts';
import type { TestConfig } from '../helpers/daemon.ts';
import { createGpgHome } from '../helpers/gpg.ts';
import type { GpgHome } from '../helpers/gpg.ts';
import { runCli } from '../helpers/lists.ts';

let config: TestConfig;
let gpg: GpgHome;
const list = 'xen-security-issues';

beforeAll(async () => {
  config = makeTestConfig();
  gpg = await createGpgHome();
});

afterAll(async () => {
  config?.cleanup();
  await gpg?.cleanup();
});

it('replaces the list key with an imported secret key, keeps the old file, and refuses public keys and unknown lists', async () => {
  const old = await runCli(['list-key', list, '--config', config.configDir]);
  expect(old.code).toBe(0);
  const key = await gpg.generateKey({ address: `${list}@lists.example.org`, name: `${list} mailing list` });
  const secretFile = join(config.root, 'new-list-key.asc');
  const publicFile = join(config.root, 'public-only.asc');
  writeFileSync(secretFile, await gpg.exportSecret(key.fingerprint));
  writeFileSync(publicFile, await gpg.exportPublic(key.fingerprint));

  expect((await runCli(['list-key', 'import', list, publicFile, '--config', config.configDir])).code).toBe(1);
  expect((await runCli(['list-key', 'import', 'no-such-list', secretFile, '--config', config.configDir])).code).toBe(1);
  expect((await runCli(['list-key', list, '--config', config.configDir])).stdout).toBe(old.stdout);

  const imported = await runCli(['list-key', 'import', list, secretFile, '--config', config.configDir]);
  expect(imported.code, imported.stderr).toBe(0);
  expect(imported.stdout.trim()).toBe(key.fingerprint);
  expect(imported.stderr).toMatch(/restart the daemon/);
  const now = await runCli(['list-key', list, '--config', config.configDir]);
  expect(now.stdout).not.toBe(old.stdout);
  expect(now.stdout).toMatch(/BEGIN PGP PUBLIC KEY BLOCK/);
  expect(readdirSync(join(config.dataDir, 'keys')).filter((file) => file.startsWith(`${list}.secret.asc.replaced-`))).toHaveLength(1);
  // Six real CLI processes, 4-10 s each on a loaded machine: the default 60 s is not enough there.
}, 180_000);
