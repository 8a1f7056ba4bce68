// Daily job: each list's moderators get one digest of the posts still waiting for them (ids and ages; senders only on public lists).
import { listHeld } from '../lists/moderation.ts';
import { buildNotice, moderatorAddresses } from '../lists/notices.ts';
import { listAddressFor } from '../lists/addresses.ts';
import { counter } from '../util/metrics.ts';
import { duration, enqueueListMail, type JobServices, type ListMail } from './jobs.ts';

const heldDigests = counter('embargo_held_digests_total', 'Held-post digests sent to moderators');

export interface HeldDigestResult {
  /** Lists with held posts, and how many posts each. */
  lists: Array<{ list: string; held: number; moderators: number }>;
  /** Digest copies enqueued. */
  copies: number;
}

/**
 * Builds and enqueues the digests. A private list's digest says only ids, ages and the hold reason: no subject and no
 * sender, since it may go in clear to a moderator without a usable key; it is encrypted to every moderator who has one.
 */
export async function runHeldDigest(services: JobServices, now: Date): Promise<HeldDigestResult> {
  const config = services.config();
  const result: HeldDigestResult = { lists: [], copies: 0 };
  const mail: ListMail[] = [];
  for (const list of config.lists.values()) {
    const held = listHeld(services.db, list.name);
    if (held.length === 0) continue;
    const moderators = moderatorAddresses(config, list);
    const showSender = list.kind === 'public';
    const request = listAddressFor(list, 'request', config.server.domain);
    const text = [
      `${held.length} post${held.length === 1 ? '' : 's'} to ${list.address} wait${held.length === 1 ? 's' : ''} for a moderator:`,
      '',
      ...held.map((post) => {
        const age = duration(now.getTime() - post.heldAt);
        return `  ${post.id}  held ${new Date(post.heldAt).toISOString().replace(/\.\d{3}Z$/, 'Z')} (${age} ago)  ${post.size} bytes  ${post.reason}${showSender ? `  from ${post.sender ?? '(none)'}` : ''}`;
      }),
      '',
      `To decide, reply to ${request} with a signed message whose first line is`,
      '  approve ID      or      reject ID REASON',
      `or run on the server: embargo held ${list.name}, embargo approve ID, embargo reject ID --reason TEXT`,
    ].join('\n');
    const batches = await buildNotice(
      config,
      list,
      await services.listKey(list.name),
      {
        to: moderators,
        subject: `${list.name}: ${held.length} post${held.length === 1 ? '' : 's'} held for moderation`,
        text,
        sensitive: false,
        encryptWhenPossible: true,
        replyToRole: 'request',
        autoSubmitted: 'auto-generated',
      },
      now,
    );
    mail.push({ list, batches });
    result.lists.push({ list: list.name, held: held.length, moderators: moderators.length });
  }
  services.db.transaction(() => {
    result.copies = enqueueListMail(services.db, mail);
  })();
  heldDigests.inc(result.copies);
  services.logger.info({ lists: result.lists.length, copies: result.copies }, 'held-post digest done');
  return result;
}
