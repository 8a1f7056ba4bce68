// Mail to postmaster@DOMAIN or <Postmaster> (RFC 5321 §4.5.1): forwarded to the server admins, never looped back.
import type { MessageContext } from '../context.ts';
import { headerValues } from '../headers.ts';
import type { RoleOutcome } from './outcome.ts';
import { forwardToAdmins, senderOf } from './owner.ts';

/**
 * The context's list is serverNoticeList (the first list by name): it signs the forward. Postmaster mail is no list
 * content, so admins without a key get it in clear; admins with a key get it encrypted.
 */
export async function handlePostmaster(context: MessageContext): Promise<RoleOutcome> {
  const { config } = context;
  const domain = config.server.domain.toLowerCase();
  // Everything Embargo sends carries X-Loop with one of its addresses. One of those at postmaster@ is our own notice
  // come back (an admin address at our own domain that the relay routes here): forwarding it again would loop.
  const ours = headerValues(context.outer.headers, 'X-Loop').some((value) => value.toLowerCase().includes(`@${domain}`));
  if (ours) return { state: 'discarded', outcome: 'discard', reason: 'postmaster: loop (our own X-Loop)' };
  await forwardToAdmins(context, {
    to: config.server.admins,
    addressedTo: `postmaster@${config.server.domain}`,
    subject: `postmaster@${config.server.domain}: message from ${senderOf(context)}`,
    sensitive: false,
    // Not list content, but what people write to a postmaster may still be private.
    encryptWhenPossible: true,
  });
  return { state: 'done', outcome: 'done', reason: 'postmaster: forwarded to the server admins' };
}
