// Reads a bounce and records its score at once, as one step (the pipeline records it in its own commit instead).
import { assessBounce, type BounceInput, type BounceOutcome } from '../../src/lists/bounce-assessment.ts';
import type { Db } from '../../src/store/database.ts';

export function handleBounce(db: Db, input: BounceInput): BounceOutcome {
  const { outcome, record } = assessBounce(db, input);
  if (record) db.transaction(record)();
  return outcome;
}
