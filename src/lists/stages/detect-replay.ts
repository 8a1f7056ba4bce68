// Stage detect-replay: a signature already accepted by any list, or bytes or a Message-ID this list took before, is not taken again.
import { discard, proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { digestOf, earlierSignatureUse, listMarkTakenBy, recordListMarks, recordSignatureUse } from '../replay-marks.ts';
import type { ListMark } from '../replay-marks.ts';
import { asSent } from '../../queues/trace.ts';

export function listMarks(context: MessageContext): ListMark[] {
  // The same bytes again first: a sender's retransmission (or a relay's duplicate) is dropped quietly, not bounced.
  // Our own Received field names the spool id, different every time: the bytes compared are the sender's.
  const marks: ListMark[] = [{ kind: 'raw', digest: digestOf(asSent(context.raw, context.spoolId)) }];
  if (context.messageId) marks.push({ kind: 'message-id', digest: digestOf(context.messageId.toLowerCase()) });
  return marks;
}

/**
 * The signature's identity, whether or not this list knows the key: a signed-only post to a public list must not be
 * taken again by a private list that knows the signer (wrapped in encryption to it).
 */
export function signatureMark(context: MessageContext): string | null {
  const verification = context.opened?.verification;
  return verification?.signed && verification.digest ? verification.digest : null;
}

export function detectReplay(context: MessageContext): StageResult {
  const { db } = context.services;
  const list = context.list.name;
  const marks = listMarks(context);
  for (const mark of marks) {
    const takenBy = listMarkTakenBy(db, list, mark);
    if (!takenBy || takenBy === context.spoolId) continue;
    if (mark.kind === 'raw') return discard(`duplicate of ${takenBy} (same bytes)`);
    if (context.list.kind === 'public') return discard(`duplicate ${mark.kind} of ${takenBy}`);
    return reject('replay', `same ${mark.kind} as the earlier post ${takenBy}`);
  }
  const signature = signatureMark(context);
  const earlier = signature ? earlierSignatureUse(db, signature, context.spoolId) : null;
  if (earlier) {
    const detail = `same signature as the earlier post ${earlier.spoolId} to ${earlier.list}`;
    return context.list.kind === 'public' ? discard(detail) : reject('replay', detail);
  }
  context.effects.push(() => {
    const at = context.services.now().getTime();
    recordListMarks(db, list, marks, context.spoolId, at);
    if (signature) recordSignatureUse(db, signature, { spoolId: context.spoolId, list, at });
  });
  return proceed;
}
