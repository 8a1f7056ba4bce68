// Mail to NAME-sendkey@: replies with the list's public key, in a message signed by that key.
import type { MessageContext } from '../context.ts';
import { attachedKey } from '../mime.ts';
import { buildNotice } from '../notices.ts';
import { takeNoticeBudget } from '../reply-budget.ts';
import { detectLoop } from '../stages/detect-loop.ts';
import type { RoleOutcome } from './outcome.ts';

export function replyAddress(context: MessageContext): string | null {
  const address = (context.from?.address ?? context.envelopeFrom).toLowerCase();
  if (!address || address.endsWith(`@${context.config.server.domain.toLowerCase()}`)) return null;
  return address;
}

export async function handleSendkey(context: MessageContext): Promise<RoleOutcome> {
  const loop = detectLoop(context);
  if (loop.kind === 'discard') return { state: 'discarded', outcome: 'discard', reason: `sendkey: ${loop.reason}` };
  const to = replyAddress(context);
  if (!to) return { state: 'discarded', outcome: 'discard', reason: 'sendkey: no address to reply to' };
  if (!takeNoticeBudget(context, 'reply', to)) return { state: 'done', outcome: 'done', reason: 'sendkey: reply withheld (over the daily limit for this address)' };
  context.outgoing.push(...(await keyReply(context, to)));
  return { state: 'done', outcome: 'done', reason: 'sendkey: key sent' };
}

export function keyReply(context: MessageContext, to: string) {
  const { list, listKey, config } = context;
  return buildNotice(config, list, listKey, {
    to: [to],
    subject: `The OpenPGP key of ${list.address}`,
    text: [
      `Attached is the public key of the list ${list.address}:`,
      '',
      `  ${listKey.fingerprint.replace(/(.{4})/g, '$1 ').trim()}`,
      '',
      'This message is signed by that key. Compare the fingerprint with the one the list owners publish',
      'before you trust it. Encrypt your posts to this key and sign them with the key registered for you.',
    ].join('\n'),
    attachments: [attachedKey(listKey.armoredPublicKey, `${list.name}.asc`)],
    sensitive: false,
    fromRole: 'request',
    inReplyTo: context.messageId,
    autoSubmitted: 'auto-replied',
  }, context.services.now());
}
