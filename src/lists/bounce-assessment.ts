// What a bounce returned to NAME-bounces+TOKEN@ means for its member: the token names a queue row, the reader classifies the bounce, the scores weigh it.
import type { Db } from '../store/database.ts';
import { defaultBounceHalfLifeDays, defaultBounceThreshold, nextScore, recordBounce } from '../queues/bounce-scores.ts';
import { rowRecipient } from '../queues/outbound.ts';
import { parseVerpToken } from '../queues/verp.ts';
import { classifyBounce, type BounceKind } from './bounce-reading.ts';

/** A hard failure counts fully; a plain message we cannot classify counts half, in case it was something else. */
const hardWeight = 1;
const unknownWeight = 0.5;

export type BounceOutcome =
  /** Not a bounce we can attribute: forged or malformed token, row purged, or token of another list. Drop it. */
  | { action: 'discard'; reason: 'bad-token' | 'unknown-row' | 'wrong-list' }
  /** Attributed, but it does not count: an auto-reply, a delay warning, a success notice, or a repeat for the same copy. */
  /** `duplicate`: this token counted before; `same-day`: the member's score already rose within the last day. */
  | { action: 'ignore'; list: string; address: string; rowId: number; reason: 'auto-reply' | 'delay-warning' | 'not-a-failure' | 'duplicate' | 'same-day' }
  | {
      action: 'scored';
      list: string;
      address: string;
      rowId: number;
      kind: BounceKind;
      /** What this bounce added. */
      weight: number;
      /** The member's decayed score after this bounce. */
      score: number;
      threshold: number;
      /** Delivery to this member on this list is suspended (now or already before). */
      suspended: boolean;
      /** True once, on the bounce that crossed the threshold: the caller tells the list's admins. */
      notifyAdmins: boolean;
      /** DSN Status (e.g. 5.1.1) or a status code found in a plain bounce. */
      status?: string;
      /** The remote server's reply, as reported in the bounce (for the admins' notice; no message content). */
      diagnostic?: string;
    };

export interface BounceInput {
  list: string;
  token: string;
  raw: Buffer;
  secret: Buffer;
  /** Milliseconds since the epoch. */
  now?: number;
  threshold?: number;
  halfLifeDays?: number;
}

/**
 * What a bounce means, and the write that records it. `record` is null when nothing is to be written (discarded,
 * ignored); otherwise the caller runs it inside its own transaction, together with whatever it does because of the
 * outcome (the pipeline: the admins' notice and the spool row's new state), so both land or neither does.
 */
export interface BounceAssessment {
  outcome: BounceOutcome;
  record: (() => void) | null;
}

/**
 * Matches a bounce to the queue row its VERP token names and reads it; writes nothing. Nothing may write this
 * member's score between this call and running `record` (the pipeline handles one message at a time).
 */
export function assessBounce(db: Db, input: BounceInput): BounceAssessment {
  const now = input.now ?? Date.now();
  const threshold = input.threshold ?? defaultBounceThreshold;
  const halfLifeMs = (input.halfLifeDays ?? defaultBounceHalfLifeDays) * 86_400_000;

  const rowId = parseVerpToken(input.secret, input.token);
  if (rowId === null) return { outcome: { action: 'discard', reason: 'bad-token' }, record: null };
  const row = rowRecipient(db, rowId);
  if (!row) return { outcome: { action: 'discard', reason: 'unknown-row' }, record: null };
  if (row.list.toLowerCase() !== input.list.toLowerCase()) return { outcome: { action: 'discard', reason: 'wrong-list' }, record: null };

  const list = row.list;
  const address = row.recipient.toLowerCase();
  const reading = classifyBounce(input.raw);
  if (reading.verdict !== 'failure' && reading.verdict !== 'unknown') {
    return { outcome: { action: 'ignore', list, address, rowId, reason: reading.verdict }, record: null };
  }

  const weight = reading.verdict === 'failure' ? hardWeight : unknownWeight;
  const reason = [reading.status, reading.diagnostic].filter(Boolean).join(' ') || `${reading.kind} bounce`;
  const scoring = { list, address, rowId, spoolId: row.spoolId, weight, now, threshold, halfLifeMs };
  const next = nextScore(db, scoring);
  // One copy counts once, ever, however many reports come back for it (a DSN and then a plain notice,
  // retransmissions, forgeries by someone who saw the return path); and a member's score rises once a day at most.
  if (next === 'duplicate' || next === 'same-day') return { outcome: { action: 'ignore', list, address, rowId, reason: next }, record: null };
  return {
    outcome: {
      action: 'scored',
      list,
      address,
      rowId,
      kind: reading.kind,
      weight,
      score: next.score,
      threshold,
      suspended: next.alreadySuspended || next.suspendNow,
      notifyAdmins: next.suspendNow,
      ...(reading.status ? { status: reading.status } : {}),
      ...(reading.diagnostic ? { diagnostic: reading.diagnostic } : {}),
    },
    record: () => recordBounce(db, scoring, clip(reason, 500)),
  };
}

function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length)}…` : text;
}
