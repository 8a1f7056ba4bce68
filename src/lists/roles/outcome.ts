// What handling one list address did with a spool row: the row's next state and the words for admins.
import type { SpoolState } from '../../queues/spool.ts';

export interface RoleOutcome {
  state: Exclude<SpoolState, 'queued' | 'processing'>;
  outcome: 'accept' | 'hold' | 'reject' | 'discard' | 'done';
  reason: string | null;
}
