// Stage detect-replay: a signed post (or a Message-ID) the list has taken before is not taken again.
import { createHash } from 'node:crypto';
import { discard, proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { asSent } from '../../smtp/trace.ts';

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex');
}

type MarkKind = 'raw' | 'signature' | 'message-id';

export function replayMarks(context: MessageContext): Array<{ kind: MarkKind; digest: string }> {
  // The same bytes again first: a sender's retransmission (or a relay's duplicate) is dropped quietly, not bounced.
  // Our own Received field names the spool id, different every time: the bytes compared are the sender's.
  const sent = asSent(context.raw, context.spoolId);
  const marks: Array<{ kind: MarkKind; digest: string }> = [{ kind: 'raw', digest: createHash('sha256').update(sent).digest('hex') }];
  const verification = context.opened?.verification;
  if (verification?.valid && context.opened) {
    // The signature covers the entity; the same signer, time and entity is the same signature, replayed.
    const entityHash = createHash('sha256').update(context.opened.entity).digest('hex');
    marks.push({
      kind: 'signature',
      digest: digest(verification.signingFingerprint ?? verification.signingKeyId ?? '', verification.signedAt?.toISOString() ?? '', entityHash),
    });
  }
  if (context.messageId) marks.push({ kind: 'message-id', digest: digest(context.messageId.toLowerCase()) });
  return marks;
}

export function detectReplay(context: MessageContext): StageResult {
  const { db } = context.services;
  const lookup = db.prepare('SELECT spool_id FROM seen_posts WHERE list = ? AND kind = ? AND digest = ?');
  const marks = replayMarks(context);
  for (const mark of marks) {
    const row = lookup.get(context.list.name, mark.kind, mark.digest) as { spool_id: string } | undefined;
    if (!row || row.spool_id === context.spoolId) continue;
    if (mark.kind === 'raw') return discard(`duplicate of ${row.spool_id} (same bytes)`);
    if (context.list.kind === 'public') return discard(`duplicate ${mark.kind} of ${row.spool_id}`);
    return reject('replay', `same ${mark.kind} as the earlier post ${row.spool_id}`);
  }
  const insert = db.prepare('INSERT OR IGNORE INTO seen_posts (list, kind, digest, spool_id, seen_at) VALUES (?, ?, ?, ?, ?)');
  context.effects.push(() => {
    for (const mark of marks) insert.run(context.list.name, mark.kind, mark.digest, context.spoolId, context.services.now().getTime());
  });
  return proceed;
}
