// Stage check-size: the list's own size limit (the server-wide one is enforced at SMTP time already).
import { proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';

export function checkSize(context: MessageContext): StageResult {
  const limit = context.list.maxMessageBytes;
  if (limit && context.raw.length > limit) return reject('too-large', `${context.raw.length} bytes, list limit ${limit}`);
  return proceed;
}
