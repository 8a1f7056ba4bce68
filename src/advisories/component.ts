// Plugs advisories into the daemon: the release schedule, catch-up for late members, and the audit trail's delivery outcomes.
import cron, { type ScheduledTask } from 'node-cron';
import type { Component, ComponentFactory, DaemonContext } from '../component.ts';
import type { ListKey } from '../crypto/index.ts';
import { onOutboundStateChange } from '../queues/outbound.ts';
import { gauge } from '../util/metrics.ts';
import { auditStateOf } from './audit.ts';
import { catchUp } from './catch-up.ts';
import { releaseDue } from './release.ts';
import { pendingEmbargoCount, recordDeliveryOutcome } from './store.ts';
import { errorMessage } from '../util/errors.ts';

const archiveEmbargoesPending = gauge('embargo_archive_embargoes_pending', 'Advisories waiting for their embargo to end');

export function advisoriesComponent(options: { now?: () => Date } = {}): ComponentFactory {
  return async (context: DaemonContext): Promise<Component> => {
    const clock = options.now ?? (() => new Date());
    const logger = context.logger.child({ component: 'advisories' });
    const keys = new Map<string, ListKey>();
    const listKey = async (name: string): Promise<ListKey | undefined> => {
      const known = keys.get(name);
      if (known) return known;
      try {
        const key = await context.listKey(name);
        keys.set(name, key);
        return key;
      } catch (error) {
        logger.error({ list: name, err: errorMessage(error) }, 'list key unavailable for advisories');
        return undefined;
      }
    };
    let task: ScheduledTask | null = null;
    let running: Promise<void> | null = null;
    let again = false;
    // One pass at a time; a request during a pass runs one more pass after it (a config reload must not be lost).
    const pass = (): Promise<void> => {
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        do {
          again = false;
          try {
            await releaseDue(context.db, clock(), { config: context.config, listKeys: listKey, logger });
            await catchUp(context.db, context.config(), listKey, clock(), logger);
          } catch (error) {
            logger.error({ err: errorMessage(error) }, 'advisory pass failed');
          }
        } while (again);
      })().finally(() => {
        running = null;
      });
      return running;
    };
    let removeListener: (() => void) | null = null;
    return {
      name: 'advisories',
      async start() {
        // Runs inside the delivery loop's transaction: the audit row changes with its queue row, or not at all.
        removeListener = onOutboundStateChange((db, changes) => {
          for (const change of changes) recordDeliveryOutcome(db, change.id, { state: auditStateOf(change.state), detail: change.reply, at: change.at });
        });
        archiveEmbargoesPending.readFrom(() =>
          context.db.open ? [{ labels: {}, value: pendingEmbargoCount(context.db) }] : [],
        );
        context.onConfigReload(() => void pass());
        await pass();
        task = cron.schedule(context.config().server.schedules.embargoRelease, () => void pass(), { name: 'advisory-release', noOverlap: true });
      },
      async stop() {
        if (task) await task.destroy();
        task = null;
        if (running) await running;
        removeListener?.();
      },
    };
  };
}
