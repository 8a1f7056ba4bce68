// Stage check-size: the list's own size limit (the server-wide one is enforced at SMTP time already).
import { proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { asSent } from '../../queues/trace.ts';

export function checkSize(context: MessageContext): StageResult {
  const limit = context.list.maxMessageBytes;
  // The sender's bytes: our own Received field does not count against them.
  const size = asSent(context.raw, context.spoolId).length;
  if (limit && size > limit) return reject('too-large', `${size} bytes, list limit ${limit}`);
  return proceed;
}
