// Stage moderate: posts to a moderated list wait for a moderator's decision (the raw bytes stay in the spool row).
import { hold, proceed } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';

export function moderate(context: MessageContext): StageResult {
  if (context.list.moderated && !context.approved) return hold('the list is moderated');
  return proceed;
}
