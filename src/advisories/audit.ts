// Writes a post's audit rows: each member's copy linked to its queue row, with the key it was encrypted to, or why it was withheld.
import { copiesOf, type OutboundState } from '../queues/outbound.ts';
import type { Db } from '../store/database.ts';
import { findAdvisory, recordDelivery, revisionOfSpool, type DeliveryState } from './store.ts';

/** How a queue row's state reads in an advisory's audit trail. */
export function auditStateOf(state: OutboundState): DeliveryState {
  switch (state) {
    case 'queued':
    case 'sending':
      return 'queued';
    case 'deferred':
      return 'deferred';
    case 'sent':
      return 'delivered';
    case 'failed':
    case 'expired':
    case 'suspended':
      return 'failed';
  }
}

export interface PostDeliveries {
  list: string;
  advisoryId: string;
  spoolId: string;
  /** The Message-ID the members' copies carry, which tells them from notices the same post caused. */
  messageId: string | null;
  copies: Array<{ address: string; organisation: string | null; fingerprint: string; encryptedTo: string }>;
  withheld: Array<{ address: string; organisation: string | null; reason: string }>;
}

/** In the pipeline's commit, after the revision and the queue rows were written (a missing one is a bug). */
export function recordPostDeliveries(db: Db, post: PostDeliveries, now: Date): void {
  const advisory = findAdvisory(db, post.list, post.advisoryId);
  if (!advisory) throw new Error(`advisory ${post.advisoryId} was not recorded before its fan-out`);
  const revision = revisionOfSpool(db, advisory.rowId, post.spoolId);
  if (revision === null) throw new Error(`advisory ${post.advisoryId} has no revision for spool row ${post.spoolId}`);
  const queued = new Map(copiesOf(db, post.spoolId, post.messageId).map((copy) => [copy.recipient, copy]));
  for (const copy of post.copies) {
    const row = queued.get(copy.address);
    recordDelivery(db, {
      advisoryRowId: advisory.rowId,
      revision,
      address: copy.address,
      organisation: copy.organisation,
      fingerprint: copy.fingerprint,
      encryptedTo: copy.encryptedTo,
      cause: 'post',
      outboundId: row?.id ?? null,
      state: row ? auditStateOf(row.state) : 'failed',
      detail: row ? null : 'no queue row was written',
      queuedAt: now,
    }, now);
  }
  for (const entry of post.withheld) {
    recordDelivery(db, {
      advisoryRowId: advisory.rowId,
      revision,
      address: entry.address,
      organisation: entry.organisation,
      fingerprint: null,
      encryptedTo: null,
      cause: 'post',
      outboundId: null,
      state: 'withheld',
      detail: entry.reason,
      queuedAt: null,
    }, now);
  }
}
