// The schedules component in a real daemon: cron runs each job with the current time, follows server.yaml edits, skips bad expressions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSchedules, type Job } from '../../src/ops/schedules.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';

const never = '59 59 23 31 12 *';
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('createSchedules', () => {
  let daemon: TestDaemon;
  const runs: Date[] = [];
  let failures = 0;
  const probe: Job = { name: 'probe', schedule: (config) => config.server.schedules.heldDigest, run: (_services, now) => void runs.push(now) };
  const failing: Job = {
    name: 'failing',
    schedule: (config) => config.server.schedules.cleanup,
    run: () => {
      failures += 1;
      throw new Error('job failed on purpose');
    },
  };
  const invalid: Job = { name: 'invalid', schedule: () => 'not a cron expression', run: () => undefined };
  // Passes cron.validate() but cron.schedule() refuses it: must not stop the daemon from starting.
  const impossible: Job = { name: 'impossible', schedule: () => '0 0 31 2 *', run: () => undefined };

  beforeAll(async () => {
    daemon = await startTestDaemon({
      // Every second for the probe and the failing job; the built-in jobs use the same settings and find nothing to do.
      server: { schedules: { heldDigest: '* * * * * *', cleanup: '* * * * * *', keyExpiryWarning: never } },
      components: [(context) => createSchedules(context, { jobs: [probe, failing, invalid, impossible] })],
    });
  }, 30_000);

  afterAll(async () => {
    await daemon?.stop();
  });

  it('runs each job on its cron schedule with the current time; a failing job is logged and runs again next time', { timeout: 10_000 }, async () => {
    // Every second: within 5 s each job has run at least twice.
    for (let waited = 0; (runs.length < 2 || failures < 2) && waited < 5_000; waited += 100) await wait(100);
    expect(runs.length).toBeGreaterThanOrEqual(2);
    for (const at of runs) expect(Math.abs(at.getTime() - Date.now())).toBeLessThan(5_000);
    expect(failures).toBeGreaterThanOrEqual(2);
    expect(daemon.logs().some((line) => line.msg === 'scheduled job failed' && line.job === 'failing')).toBe(true);
    for (const name of ['invalid', 'impossible']) {
      expect(daemon.logs().some((line) => line.msg === 'invalid cron expression in server.yaml schedules; job not scheduled' && line.job === name)).toBe(true);
    }
  });

  it('follows a schedule change in server.yaml without a restart', async () => {
    daemon.config.editServer({ schedules: { heldDigest: never } });
    await daemon.waitForLog((line) => line.msg === 'config reloaded', 10_000);
    await wait(1_200);
    const settled = runs.length;
    await wait(2_200);
    expect(runs.length).toBe(settled);
    daemon.config.editServer({ schedules: { heldDigest: '* * * * * *' } });
    await wait(2_500);
    expect(runs.length).toBeGreaterThan(settled);
  }, 20_000);
});
