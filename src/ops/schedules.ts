// The scheduled jobs as one daemon component: node-cron calls each job with the current time; schedules follow server.yaml live.
import cron from 'node-cron';
import type { ScheduledTask } from 'node-cron';
import type { Config } from '../config/types.ts';
import type { Component, DaemonContext } from '../component.ts';
import { counter, histogram } from '../util/metrics.ts';
import { runCleanup } from './cleanup.ts';
import { runHeldDigest } from './held-digest.ts';
import type { JobServices } from './jobs.ts';
import { runKeyExpiryWarnings } from './key-expiry.ts';
import { errorMessage } from '../util/errors.ts';

const jobRuns = counter('embargo_job_runs_total', 'Scheduled job runs by outcome', ['job', 'outcome']);
const jobSeconds = histogram('embargo_job_seconds', 'Scheduled job run time');

export interface Job {
  name: string;
  /** The cron expression from the config. */
  schedule(config: Config): string;
  run(services: JobServices, now: Date): Promise<unknown> | unknown;
}

export const jobs: Job[] = [
  { name: 'key-expiry-warning', schedule: (config) => config.server.schedules.keyExpiryWarning, run: runKeyExpiryWarnings },
  { name: 'held-digest', schedule: (config) => config.server.schedules.heldDigest, run: runHeldDigest },
  { name: 'cleanup', schedule: (config) => config.server.schedules.cleanup, run: runCleanup },
];

/** The component plugged into src/daemon.ts. Jobs never overlap themselves; a failing run is logged and counted, not thrown. */
export function createSchedules(context: DaemonContext, options: { jobs?: Job[]; now?: () => Date } = {}): Component {
  const clock = options.now ?? (() => new Date());
  const logger = context.logger.child({ component: 'schedules' });
  const services: JobServices = { config: context.config, db: context.db, logger, listKey: context.listKey };
  const tasks = new Map<string, { expression: string; task: ScheduledTask }>();
  const running = new Map<string, Promise<void>>();
  let started = false;

  const runJob = (job: Job): Promise<void> => {
    const already = running.get(job.name);
    if (already) return already;
    // Started in a microtask, so the entry is in `running` before the job can finish (a synchronous job finishes at once).
    const run = Promise.resolve().then(async () => {
      const started = performance.now();
      try {
        await job.run(services, clock());
        jobRuns.inc({ job: job.name, outcome: 'ok' });
      } catch (error) {
        jobRuns.inc({ job: job.name, outcome: 'error' });
        logger.error({ job: job.name, err: errorMessage(error) }, 'scheduled job failed');
      } finally {
        jobSeconds.observe((performance.now() - started) / 1000);
        running.delete(job.name);
      }
    });
    running.set(job.name, run);
    return run;
  };

  /** (Re)creates the cron task of every job whose expression changed; an invalid expression keeps the job off and says so. */
  const apply = async (config: Config) => {
    for (const job of options.jobs ?? jobs) {
      const expression = job.schedule(config);
      const current = tasks.get(job.name);
      if (current?.expression === expression) continue;
      if (current) await current.task.destroy();
      tasks.delete(job.name);
      let task: ScheduledTask;
      try {
        // validate() passes some expressions that schedule() then refuses (e.g. 31 February), so both are checked.
        if (!cron.validate(expression)) throw new Error('not a cron expression');
        task = cron.schedule(expression, () => runJob(job), { name: `embargo-${job.name}`, noOverlap: true });
      } catch (error) {
        logger.error(
          { job: job.name, schedule: expression, err: errorMessage(error) },
          'invalid cron expression in server.yaml schedules; job not scheduled',
        );
        continue;
      }
      tasks.set(job.name, { expression, task });
      logger.debug({ job: job.name, schedule: expression }, 'job scheduled');
    }
  };

  context.onConfigReload((config) => {
    if (!started) return;
    apply(config).catch((error: unknown) => logger.error({ err: errorMessage(error) }, 'rescheduling failed'));
  });

  return {
    name: 'schedules',
    async start() {
      started = true;
      await apply(context.config());
    },
    async stop() {
      started = false;
      for (const { task } of tasks.values()) await task.destroy();
      tasks.clear();
      await Promise.allSettled([...running.values()]);
    },
  };
}
