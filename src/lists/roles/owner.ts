// Mail to NAME-owner@: forwarded to the list's admins, encrypted to those with a key, never looped back.
import type { MessageContext } from '../context.ts';
import { attachedMessage } from '../mime.ts';
import { adminAddresses, buildNotice } from '../notices.ts';
import { headerValues } from '../headers.ts';
import type { RoleOutcome } from './outcome.ts';

export async function handleOwner(context: MessageContext): Promise<RoleOutcome> {
  const { config, list, listKey, services } = context;
  const ours = headerValues(context.outer.headers, 'X-Loop').some((value) => value.toLowerCase().includes(list.address.toLowerCase()));
  if (ours) return { state: 'discarded', outcome: 'discard', reason: 'owner: loop (our own X-Loop)' };
  const sender = context.from?.address ?? (context.envelopeFrom || '<>');
  const summary = [
    `A message to ${list.name}-owner@${config.server.domain} from ${sender} is attached as received.`,
    '',
    `Spool id: ${context.spoolId}`,
    `Envelope from: ${context.envelopeFrom || '<>'}`,
  ].join('\n');
  context.outgoing.push(
    ...(await buildNotice(config, list, listKey, {
      to: adminAddresses(config, list),
      subject: `${list.name}: message to the list owners from ${sender}`,
      text: summary,
      attachments: [attachedMessage(context.raw)],
      // What people write to the owners of a private list may be as confidential as the list itself.
      sensitive: list.kind !== 'public',
      withheldText: `${summary}\n\nIt is not attached: no usable OpenPGP key is configured for you.`,
      autoSubmitted: 'auto-generated',
    }, services.now())),
  );
  return { state: 'done', outcome: 'done', reason: 'owner: forwarded to the admins' };
}
