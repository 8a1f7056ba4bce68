// Stage limit-rate: public lists take at most postsPerHourPerSender posts per sender per hour.
import { createHash } from 'node:crypto';
import { proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import type { Db } from '../../store/database.ts';
import { statement } from '../../store/statements.ts';

export function limitRate(context: MessageContext): StageResult {
  const { list, services } = context;
  // Configured members are trusted; an approved post was counted when it was held.
  if (list.kind !== 'public' || context.poster || context.approved) return proceed;
  const sender = context.from?.address ?? context.envelopeFrom.toLowerCase();
  const senderDigest = createHash('sha256').update(sender).digest('hex');
  const now = services.now().getTime();
  const { count } = statement(services.db, 'SELECT COUNT(*) AS count FROM post_counts WHERE list = ? AND sender_digest = ? AND posted_at > ?')
    .get(list.name, senderDigest, now - 3_600_000) as { count: number };
  if (count >= list.postsPerHourPerSender) return reject('rate-limited', `${count} posts in the last hour`);
  const insert = statement(services.db, 'INSERT INTO post_counts (list, sender_digest, posted_at) VALUES (?, ?, ?)');
  context.effects.push(() => {
    insert.run(list.name, senderDigest, now);
  });
  return proceed;
}

/** Forgets posts older than the hourly window (the cleanup job): the table only ever needs the last hour. */
export function forgetPostCountsBefore(db: Db, before: number): number {
  return db.prepare('DELETE FROM post_counts WHERE posted_at < ?').run(before).changes;
}
