// Publishes advisories whose embargo ended: the newest revision's signed content, exactly once, across restarts.
import type { Config, ListConfig } from '../config/types.ts';
import type { ListKey } from '../crypto/index.ts';
import { insertArchiveEntry, prepareArchiveEntry } from '../archive/store.ts';
import type { OutgoingMail } from '../lists/context.ts';
import { confirmedSubscribers } from '../lists/subscribers.ts';
import { enqueueOutgoing } from '../queues/outbound.ts';
import type { Db } from '../store/database.ts';
import type { Logger } from '../util/log.ts';
import { counter } from '../util/metrics.ts';
import { openRevision, publicationMessageId, publishedMessage } from './content.ts';
import { describeDate, noticeToPosters } from './notify.ts';
import { addEvent, dueForRelease, getRevision, markPublished, type Advisory } from './store.ts';

const advisoriesReleased = counter('embargo_advisories_released_total', 'Advisory revisions published');

export interface ReleaseOptions {
  config: () => Config;
  listKeys: (name: string) => ListKey | undefined | Promise<ListKey | undefined>;
  logger?: Logger;
}

export type ReleaseOutcome =
  | { advisoryId: string; list: string; revision: number; status: 'released'; targetList: string | null; publicEntryId: number | null; messageId: string | null }
  | { advisoryId: string; list: string; status: 'waiting'; reason: string };

/** Everyone the public list mails: its members with role recipient and its confirmed subscribers. */
function publicRecipients(db: Db, list: ListConfig): string[] {
  const addresses = new Set<string>();
  for (const member of list.members) if (member.roles.includes('recipient')) addresses.add(member.address);
  for (const address of confirmedSubscribers(db, list.name)) addresses.add(address);
  return [...addresses];
}

/**
 * Publishes every advisory due at `now`. The public archive entry, the mail to the public list, the confirmation to
 * the posters and the published mark are one transaction, guarded by the row as it was read: a second pass, a
 * second process or a crash between two steps never publishes a revision twice, and nothing is half done.
 * Nothing posted to the public list can stand in for the advisory: its Message-ID is the server's own and unguessable.
 */
export async function releaseDue(db: Db, now: Date, options: ReleaseOptions): Promise<ReleaseOutcome[]> {
  const outcomes: ReleaseOutcome[] = [];
  const config = options.config();
  for (const advisory of dueForRelease(db, now)) {
    const outcome = await releaseOne(db, config, advisory, now, options);
    if (outcome) outcomes.push(outcome);
  }
  return outcomes;
}

async function releaseOne(db: Db, config: Config, advisory: Advisory, now: Date, options: ReleaseOptions): Promise<ReleaseOutcome | null> {
  const waiting = (reason: string): ReleaseOutcome => {
    options.logger?.warn({ list: advisory.list, advisory: advisory.advisoryId, reason }, 'advisory release waiting');
    return { advisoryId: advisory.advisoryId, list: advisory.list, status: 'waiting', reason };
  };
  const source = config.lists.get(advisory.list);
  if (!source) return waiting('its list is not configured');
  const sourceKey = await options.listKeys(source.name);
  if (!sourceKey) return waiting('list key not loaded');
  const target = source.publishTo ? config.lists.get(source.publishTo) : undefined;
  if (source.publishTo && !target) return waiting(`publishTo list ${source.publishTo} is not configured`);
  const targetKey = target ? await options.listKeys(target.name) : undefined;
  if (target && !targetKey) return waiting('list key not loaded');
  const revisionRow = getRevision(db, advisory.rowId, advisory.revision);
  if (!revisionRow) return waiting(`revision ${advisory.revision} is missing`);
  const content = await openRevision(sourceKey, revisionRow.sealed);

  let publication: { messageId: string; entry: Awaited<ReturnType<typeof prepareArchiveEntry>>; mail: OutgoingMail | null } | null = null;
  if (target && targetKey) {
    const messageId = publicationMessageId(config, advisory.advisoryId, advisory.revision);
    const message = publishedMessage(config, target, content, { messageId, releasedAt: now });
    const entry = await prepareArchiveEntry({ list: target, listKey: targetKey, message, receivedAt: now, spoolId: null, embargoUntil: null });
    const recipients = source.mailOnRelease ? publicRecipients(db, target) : [];
    const mail = recipients.length > 0 ? { payload: message, copies: recipients.map((recipient) => ({ recipient, head: Buffer.alloc(0), messageId })) } : null;
    publication = { messageId, entry, mail };
  }
  const update = advisory.state === 'released';
  const notices = await noticeToPosters(
    config,
    source,
    sourceKey,
    {
      subject: `${advisory.advisoryId} ${update ? `revision ${advisory.revision} published` : 'released'}`,
      lines: [
        `${advisory.advisoryId} (revision ${advisory.revision}: ${content.title}) was ${update ? 'published as an update' : 'released'} at ${describeDate(now)}.`,
        advisory.embargoUntil && !update ? `Its embargo ended ${describeDate(advisory.embargoUntil)}.` : '',
        target
          ? `It is in the public archive of ${target.address}${publication?.mail ? ` and was mailed to its ${publication.mail.copies.length} recipient(s)` : ''}, under Message-ID <${publication?.messageId}>.`
          : 'The list has no publishTo list, so nothing was made public; only its state changed.',
      ].filter((line) => line !== ''),
    },
    now,
  );

  const published = db.transaction((): { entryId: number | null } | null => {
    const entryId = publication ? insertArchiveEntry(db, publication.entry) : null;
    const marked = markPublished(
      db,
      advisory,
      { revision: advisory.revision, publishedTo: target?.name ?? null, messageId: publication?.messageId ?? null, entryId },
      now,
    );
    // Someone else published it (or changed it) since it was read: this transaction leaves no trace.
    if (!marked) throw new StaleRelease();
    // Queue rows are due by the wall clock, whatever time the pass was asked to publish for.
    if (publication?.mail) enqueueOutgoing(db, { spoolId: null, list: target!.name, payload: publication.mail.payload, copies: publication.mail.copies });
    for (const notice of notices) enqueueOutgoing(db, { spoolId: null, list: source.name, payload: notice.payload, copies: notice.copies });
    addEvent(db, advisory.rowId, now, update ? 'published-update' : 'released', `revision ${advisory.revision}${target ? ` to ${target.name}` : ''}`, 'schedule');
    return { entryId };
  });
  let result: { entryId: number | null } | null;
  try {
    result = published();
  } catch (error) {
    if (error instanceof StaleRelease) return null;
    throw error;
  }
  if (!result) return null;
  advisoriesReleased.inc();
  options.logger?.info(
    { list: advisory.list, advisory: advisory.advisoryId, revision: advisory.revision, publishTo: target?.name ?? null, publicEntryId: result.entryId },
    'advisory released',
  );
  return {
    advisoryId: advisory.advisoryId,
    list: advisory.list,
    revision: advisory.revision,
    status: 'released',
    targetList: target?.name ?? null,
    publicEntryId: result.entryId,
    messageId: publication?.messageId ?? null,
  };
}

/** Internal control flow: rolls the release transaction back when the row changed under it. */
class StaleRelease extends Error {}
