// Mail to NAME-owner@: forwarded to the list's admins, encrypted to those with a key, never looped back.
import type { MessageContext } from '../context.ts';
import { attachedMessage } from '../mime.ts';
import { adminAddresses, buildNotice } from '../notices.ts';
import { headerValues } from '../headers.ts';
import type { RoleOutcome } from './outcome.ts';

export interface AdminForward {
  /** Who gets it. */
  to: string[];
  /** The address the message was sent to, for the summary and the subject. */
  addressedTo: string;
  subject: string;
  /** Carries list content: sent only encrypted; admins without a key get a note without the original. */
  sensitive: boolean;
  /** Encrypt to admins with a usable key even when not sensitive. */
  encryptWhenPossible?: boolean;
}

/** Forwards the message as received (attached) to admins, signed by the context's list, encrypted to admins with a key. */
export async function forwardToAdmins(context: MessageContext, forward: AdminForward): Promise<void> {
  const { config, list, listKey, services } = context;
  const summary = [
    `A message to ${forward.addressedTo} from ${senderOf(context)} is attached as received.`,
    '',
    `Spool id: ${context.spoolId}`,
    `Envelope from: ${context.envelopeFrom || '<>'}`,
  ].join('\n');
  context.outgoing.push(
    ...(await buildNotice(config, list, listKey, {
      to: forward.to,
      subject: forward.subject,
      text: summary,
      attachments: [attachedMessage(context.raw)],
      sensitive: forward.sensitive,
      encryptWhenPossible: forward.encryptWhenPossible,
      withheldText: `${summary}\n\nIt is not attached: no usable OpenPGP key is configured for you.`,
      autoSubmitted: 'auto-generated',
    }, services.now())),
  );
}

export function senderOf(context: MessageContext): string {
  return context.from?.address ?? (context.envelopeFrom || '<>');
}

export async function handleOwner(context: MessageContext): Promise<RoleOutcome> {
  const { config, list } = context;
  const ours = headerValues(context.outer.headers, 'X-Loop').some((value) => value.toLowerCase().includes(list.address.toLowerCase()));
  if (ours) return { state: 'discarded', outcome: 'discard', reason: 'owner: loop (our own X-Loop)' };
  await forwardToAdmins(context, {
    to: adminAddresses(config, list),
    addressedTo: `${list.name}-owner@${config.server.domain}`,
    subject: `${list.name}: message to the list owners from ${senderOf(context)}`,
    // What people write to the owners of a private list may be as confidential as the list itself.
    sensitive: list.kind !== 'public',
  });
  return { state: 'done', outcome: 'done', reason: 'owner: forwarded to the admins' };
}
