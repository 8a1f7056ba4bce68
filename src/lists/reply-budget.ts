// Limits on a list's automatic mail: replies to one address per day (RFC 3834), refusal notices to its admins per hour.
//
// Why: every reply and notice is signed (and often encrypted) by the list key and goes through the queue, so each
// junk message would cost more work than it took to send and turn a flood into backscatter to forged addresses and a
// flood in the admins' mailboxes. Past a limit the mail is not built at all; the spool row keeps its outcome, the
// metrics count what was not sent, and the first notices of each period still tell the admins that it is happening.
import { createHash } from 'node:crypto';
import type { MessageContext } from './context.ts';
import type { Db } from '../store/database.ts';
import { counter } from '../util/metrics.ts';
import { statement } from '../store/statements.ts';

export type NoticeKind = 'reply' | 'refusal';

const withheld = counter('embargo_notices_withheld_total', 'Automatic replies and refusal notices not sent: over their limit for the period', ['kind']);

const hourMs = 3_600_000;
const periodMs: Record<NoticeKind, number> = { reply: 24 * hourMs, refusal: hourMs };

/** Taken in this message but not committed yet (its effects run at the commit), so one message counts its own too. */
const takenHere = new WeakMap<MessageContext, Map<string, number>>();

function digestOf(address: string): string {
  return createHash('sha256').update(address.toLowerCase()).digest('hex');
}

function limitOf(context: MessageContext, kind: NoticeKind): number {
  const { notices } = context.config.server;
  return kind === 'reply' ? notices.autoRepliesPerAddressPerDay : notices.refusalNoticesPerListPerHour;
}

/**
 * Whether the list may send one more `kind` of mail to `address` (refusals: to its admins, one budget per list); if so,
 * records it with the message's commit. Returns false, and counts it, once the period's limit is reached.
 */
export function takeNoticeBudget(context: MessageContext, kind: NoticeKind, address = '*admins*'): boolean {
  const { list, services } = context;
  const digest = digestOf(address);
  const now = services.now().getTime();
  const key = `${kind}\u0000${digest}`;
  const pending = takenHere.get(context) ?? new Map<string, number>();
  takenHere.set(context, pending);
  const { count } = statement(services.db, 'SELECT COUNT(*) AS count FROM notice_counts WHERE list = ? AND kind = ? AND address_digest = ? AND sent_at > ?')
    .get(list.name, kind, digest, now - periodMs[kind]) as { count: number };
  if (count + (pending.get(key) ?? 0) >= limitOf(context, kind)) {
    withheld.inc({ kind });
    services.logger.info({ spoolId: context.spoolId, list: list.name, kind }, 'automatic mail not sent: over its limit for the period');
    return false;
  }
  pending.set(key, (pending.get(key) ?? 0) + 1);
  const insert = statement(services.db, 'INSERT INTO notice_counts (list, kind, address_digest, sent_at) VALUES (?, ?, ?, ?)');
  context.effects.push(() => {
    insert.run(list.name, kind, digest, now);
  });
  return true;
}

/** Forgets counts older than any period (the cleanup job). */
export function forgetNoticeCountsBefore(db: Db, before: number): number {
  return db.prepare('DELETE FROM notice_counts WHERE sent_at < ?').run(before).changes;
}
