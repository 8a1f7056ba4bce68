// What a scheduled job may use: the live config, the database, the list keys and the logger (DaemonContext provides them).
import type { Config, ListConfig } from '../config/types.ts';
import type { ListKey } from '../crypto/index.ts';
import type { OutgoingMail } from '../lists/context.ts';
import { enqueueOutgoing } from '../queues/outbound.ts';
import type { Db } from '../store/database.ts';
import type { Logger } from '../util/log.ts';

export interface JobServices {
  config(): Config;
  db: Db;
  logger: Logger;
  listKey(listName: string): Promise<ListKey>;
}

/** Notice batches built for one list, to enqueue in the job's transaction. */
export interface ListMail {
  list: ListConfig;
  batches: OutgoingMail[];
}

/**
 * Enqueues every copy (delivery wakes on enqueue); call inside the job's transaction. Returns the copies enqueued.
 * The queue runs on the wall clock, not on the job's `now` (which tests move ahead), so copies are due at once.
 */
export function enqueueListMail(db: Db, mail: ListMail[]): number {
  let copies = 0;
  for (const { list, batches } of mail) {
    for (const batch of batches) {
      if (batch.copies.length === 0) continue;
      enqueueOutgoing(db, { spoolId: null, list: list.name, payload: batch.payload, copies: batch.copies });
      copies += batch.copies.length;
    }
  }
  return copies;
}

export const dayMs = 86_400_000;

/** "3 days", "5 hours", "12 minutes": ages and remaining times in words for notices. */
export function duration(ms: number): string {
  const abs = Math.abs(ms);
  const [value, unit] = abs >= 2 * dayMs ? [abs / dayMs, 'day'] : abs >= 2 * 3_600_000 ? [abs / 3_600_000, 'hour'] : [abs / 60_000, 'minute'];
  const whole = Math.floor(value);
  return `${whole} ${unit}${whole === 1 ? '' : 's'}`;
}
