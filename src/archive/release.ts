// Publishes embargoed advisories once their time has passed: exactly once, on schedule, across restarts.
import cron, { type ScheduledTask } from 'node-cron';
import type { Config } from '../config/types.ts';
import { decryptFromArchive, type ListKey } from '../crypto/index.ts';
import type { Db } from '../store/database.ts';
import type { Logger } from '../util/log.ts';
import { metrics } from '../util/metrics.ts';
import { insertArchiveEntry, prepareArchiveEntry } from './store.ts';

/** An advisory that was just published, handed to the pipeline to mail to the public list. */
export interface ReleasedAdvisory {
  /** The announce list it was posted to. */
  sourceList: string;
  /** The public list whose archive now holds it. */
  targetList: string;
  /** Row id of the public archive entry. */
  entryId: number;
  messageId: string | null;
  /** The plaintext MIME message as archived. */
  message: Buffer;
  releasedAt: Date;
}

export interface ReleaseOptions {
  config: () => Config;
  listKeys: (name: string) => ListKey | undefined;
  /**
   * Called after the release is committed; the row is marked mailed only when it resolves, so a crash in
   * between mails again after restart (at least once, never silently lost).
   */
  onMailRelease?: (advisory: ReleasedAdvisory) => void | Promise<void>;
  logger?: Logger;
}

export type ReleaseOutcome =
  | { entryId: number; status: 'released'; publicEntryId: number; targetList: string }
  | { entryId: number; status: 'waiting'; reason: string };

interface DueRow {
  id: number;
  list: string;
  release_to: string;
  encrypted: number;
  message: Buffer;
  spool_id: string | null;
}

/**
 * Publishes every advisory whose embargo ended at or before `now`. The public insert and the released_at mark
 * are one transaction, and a row already marked is skipped inside it, so two runs (or two processes) never
 * publish one advisory twice.
 */
export async function releaseDue(db: Db, now: Date, options: ReleaseOptions): Promise<ReleaseOutcome[]> {
  const outcomes: ReleaseOutcome[] = [];
  const due = db
    .prepare(
      `SELECT id, list, release_to, encrypted, message, spool_id FROM archive_entries
       WHERE release_at IS NOT NULL AND released_at IS NULL AND release_to IS NOT NULL AND release_at <= ?
       ORDER BY release_at, id`,
    )
    .all(now.getTime()) as DueRow[];
  const config = options.config();
  for (const row of due) {
    const source = config.lists.get(row.list);
    const target = config.lists.get(row.release_to);
    const sourceKey = options.listKeys(row.list);
    const targetKey = options.listKeys(row.release_to);
    const missing = !source ? 'source list is not configured' : !target ? 'target list is not configured' : !sourceKey || !targetKey ? 'list key not loaded' : null;
    if (missing || !source || !target || !sourceKey || !targetKey) {
      outcomes.push({ entryId: row.id, status: 'waiting', reason: missing ?? 'unknown' });
      options.logger?.warn({ entryId: row.id, list: row.list, releaseTo: row.release_to, reason: missing }, 'embargo release waiting');
      continue;
    }
    const plaintext = row.encrypted ? await decryptFromArchive(sourceKey, row.message) : row.message;
    const prepared = await prepareArchiveEntry({
      list: target,
      listKey: targetKey,
      message: plaintext,
      receivedAt: now,
      spoolId: row.spool_id,
      embargoUntil: null,
    });
    const publish = db.transaction((): number | null => {
      const still = db.prepare('SELECT released_at FROM archive_entries WHERE id = ?').get(row.id) as { released_at: number | null };
      if (still.released_at !== null) return null;
      const publicEntryId = insertArchiveEntry(db, prepared);
      db.prepare('UPDATE archive_entries SET released_at = ?, released_entry_id = ?, mail_state = ? WHERE id = ?').run(
        now.getTime(),
        publicEntryId,
        source.mailOnRelease ? 'pending' : null,
        row.id,
      );
      return publicEntryId;
    });
    const publicEntryId = publish();
    if (publicEntryId === null) continue;
    metrics.increment('embargo_archive_releases_total', {}, 1, 'Embargoed advisories published');
    options.logger?.info({ entryId: row.id, list: row.list, releaseTo: row.release_to, publicEntryId }, 'embargo released');
    outcomes.push({ entryId: row.id, status: 'released', publicEntryId, targetList: target.name });
  }
  if (options.onMailRelease) await mailPending(db, options, options.onMailRelease);
  return outcomes;
}

async function mailPending(db: Db, options: ReleaseOptions, send: (advisory: ReleasedAdvisory) => void | Promise<void>): Promise<void> {
  const pending = db
    .prepare(
      `SELECT source.id, source.list, source.release_to, source.released_at, source.released_entry_id,
              target.encrypted, target.message, target.message_id
       FROM archive_entries AS source JOIN archive_entries AS target ON target.id = source.released_entry_id
       WHERE source.mail_state = 'pending' ORDER BY source.released_at, source.id`,
    )
    .all() as Array<{
    id: number;
    list: string;
    release_to: string;
    released_at: number;
    released_entry_id: number;
    encrypted: number;
    message: Buffer;
    message_id: string | null;
  }>;
  for (const row of pending) {
    let message = row.message;
    if (row.encrypted) {
      const key = options.listKeys(row.release_to);
      if (!key) continue;
      message = await decryptFromArchive(key, row.message);
    }
    await send({
      sourceList: row.list,
      targetList: row.release_to,
      entryId: row.released_entry_id,
      messageId: row.message_id,
      message,
      releasedAt: new Date(row.released_at),
    });
    db.prepare("UPDATE archive_entries SET mail_state = 'done' WHERE id = ?").run(row.id);
  }
}

/** Advisories still waiting for their embargo to end (ids and times only), for admins and metrics. */
export function pendingEmbargoes(db: Db): Array<{ id: number; list: string; releaseAt: Date; releaseTo: string | null }> {
  return (
    db
      .prepare(
        `SELECT id, list, release_at, release_to FROM archive_entries
         WHERE release_at IS NOT NULL AND released_at IS NULL ORDER BY release_at`,
      )
      .all() as Array<{ id: number; list: string; release_at: number; release_to: string | null }>
  ).map((row) => ({ id: row.id, list: row.list, releaseAt: new Date(row.release_at), releaseTo: row.release_to }));
}

export interface EmbargoReleaseComponent {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** One release pass now (also what the schedule runs). */
  runOnce(): Promise<ReleaseOutcome[]>;
}

/** The scheduled job: a pass at start (catching up on anything that came due while stopped), then on the cron schedule. */
export function createEmbargoRelease(
  options: ReleaseOptions & { db: Db; logger: Logger; now?: () => Date },
): EmbargoReleaseComponent {
  let task: ScheduledTask | null = null;
  let running: Promise<ReleaseOutcome[]> | null = null;
  const clock = options.now ?? (() => new Date());

  const runOnce = async (): Promise<ReleaseOutcome[]> => {
    // One pass at a time in this process; the transaction guards against anything else.
    if (running) return running;
    running = releaseDue(options.db, clock(), options).finally(() => {
      running = null;
    });
    return running;
  };
  const guarded = async () => {
    try {
      await runOnce();
    } catch (error) {
      options.logger.error({ err: error }, 'embargo release pass failed');
    }
  };

  return {
    async start() {
      metrics.gauge('embargo_archive_embargoes_pending', 'Embargoed advisories waiting for their release time', () =>
        options.db.open
          ? [{ labels: {}, value: (options.db.prepare('SELECT count(*) AS n FROM archive_entries WHERE release_at IS NOT NULL AND released_at IS NULL').get() as { n: number }).n }]
          : [],
      );
      await guarded();
      task = cron.schedule(options.config().server.schedules.embargoRelease, guarded, { name: 'embargo-release', noOverlap: true });
    },
    async stop() {
      if (task) await task.destroy();
      task = null;
      if (running) await running.catch(() => undefined);
    },
    runOnce,
  };
}
