// Threat: a data directory made by hand (or restored from a backup) with 0755 lets other local users list and open the database and the list keys' directory.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { makeTestConfig, startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';

let daemon: TestDaemon | undefined;
const config = makeTestConfig();

afterAll(async () => {
  await daemon?.stop();
  config.cleanup();
});

it('tightens an existing data directory to 0700 at start and logs that it did', async () => {
  mkdirSync(config.dataDir, { recursive: true });
  chmodSync(config.dataDir, 0o755);
  daemon = await startTestDaemon({ config });
  expect(statSync(config.dataDir).mode & 0o777).toBe(0o700);
  const line = daemon.logs().find((entry) => entry.msg === 'data directory was open to other users; tightened to 0700');
  expect(line).toMatchObject({ dataDir: config.dataDir, mode: '755', now: '700' });
});
