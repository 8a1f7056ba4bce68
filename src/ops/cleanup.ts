// Daily job: deletes finished spool rows and old outbound rows (delivered and dead letters) past their retention time.
import { forgetDecidedWithoutMessage } from '../lists/moderation.ts';
import { forgetNoticeCountsBefore } from '../lists/reply-budget.ts';
import { forgetPostCountsBefore } from '../lists/stages/limit-rate.ts';
import { cleanupOutbound } from '../queues/outbound.ts';
import { createSpool } from '../queues/spool.ts';
import { counter } from '../util/metrics.ts';
import { dayMs, type JobServices } from './jobs.ts';
import { forgetRemindersBefore } from './key-expiry.ts';

const cleanupDeleted = counter('embargo_cleanup_deleted_total', 'Rows deleted by the cleanup job', ['table']);

export interface CleanupResult {
  spoolRows: number;
  outboundRows: number;
  moderationRows: number;
  keyReminders: number;
  /** Counts kept for the limits on posts and automatic mail, past their periods. */
  limitCounts: number;
}

/**
 * Spool rows that are done, rejected or discarded and older than `spoolRetentionDays` go; held and shunted rows stay
 * whatever their age (they wait for a human). Delivered rows and dead letters (failed, expired, suspended) older than
 * `deadLetterRetentionDays` go with the payloads nobody needs any more. Rows still waiting to be sent are never touched.
 */
export function runCleanup(services: JobServices, now: Date): CleanupResult {
  const { db } = services;
  const { spoolRetentionDays, deadLetterRetentionDays } = services.config().server.schedules;
  const result = db.transaction((): CleanupResult => {
    const spoolRows = createSpool(db).purgeFinished(now.getTime() - spoolRetentionDays * dayMs);
    const outboundRows = cleanupOutbound(db, deadLetterRetentionDays, now.getTime());
    const moderationRows = forgetDecidedWithoutMessage(db);
    // Reminder records only matter for a week; a month keeps them readable for an admin looking back.
    const keyReminders = forgetRemindersBefore(db, now.getTime() - 30 * dayMs);
    // The longest period a limit counts over is a day (automatic replies per address).
    const limitCounts = forgetNoticeCountsBefore(db, now.getTime() - dayMs) + forgetPostCountsBefore(db, now.getTime() - dayMs);
    return { spoolRows, outboundRows, moderationRows, keyReminders, limitCounts };
  })();
  cleanupDeleted.inc({ table: 'spool' }, result.spoolRows);
  cleanupDeleted.inc({ table: 'outbound' }, result.outboundRows);
  services.logger.info({ ...result }, 'cleanup done');
  return result;
}
