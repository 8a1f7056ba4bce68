// The members report flags "expires soon" with the same horizon as the key-expiry reminders (schedules.keyExpiryWarningDays).
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loader.ts';
import type { Config } from '../../src/config/types.ts';
import { memberReports } from '../../src/ops/member-report.ts';
import { makeTestConfig, type TestConfig } from '../helpers/daemon.ts';
import { createGpgHome, type GpgHome } from '../helpers/gpg.ts';

const list = 'xen-security-issues-discuss';
const address = 'security@vendor-c.example';

describe('member report: expires soon', () => {
  let gpg: GpgHome;
  const made: TestConfig[] = [];

  async function configWith(warningDays: number | undefined, armoredKey: string): Promise<Config> {
    const test = makeTestConfig({
      files: { 'keys/vendor-c.asc': armoredKey },
      lists: {
        [list]: stringify({
          kind: 'discussion',
          archive: 'private',
          members: [{ email: address, organisation: 'Vendor C', key: '../keys/vendor-c.asc', roles: ['recipient'] }],
        }),
      },
      ...(warningDays === undefined ? {} : { server: { schedules: { keyExpiryWarningDays: warningDays } } }),
    });
    made.push(test);
    const loaded = await loadConfig(test.configDir);
    if (!loaded.ok) throw new Error(`test config does not load: ${JSON.stringify(loaded.errors)}`);
    return loaded.config;
  }

  let armored: string;
  beforeAll(async () => {
    gpg = await createGpgHome();
    // Expires in 20 days: "soon" with a 30-day horizon, not with the default 14.
    const key = await gpg.generateKey({ address, expire: '20d' });
    armored = await gpg.exportPublic(key.fingerprint);
  }, 30_000);

  afterAll(async () => {
    for (const test of made) test.cleanup();
    await gpg?.cleanup();
  });

  it('uses schedules.keyExpiryWarningDays from server.yaml, not a fixed 14 days', async () => {
    const wide = await memberReports(await configWith(30, armored), { lists: [list] });
    expect(wide).toHaveLength(1);
    expect(wide[0].usable).toBe(true);
    expect(wide[0].problems.map((problem) => problem.code)).toContain('expires-soon');

    const narrow = await memberReports(await configWith(7, armored), { lists: [list] });
    expect(narrow[0].problems.map((problem) => problem.code)).not.toContain('expires-soon');

    const byDefault = await memberReports(await configWith(undefined, armored), { lists: [list] });
    expect(byDefault[0].problems.map((problem) => problem.code)).not.toContain('expires-soon');
  });
});
