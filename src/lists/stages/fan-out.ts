// Stage fan-out: one copy per recipient — sealed per recipient on private lists, signed in clear on public ones.
import * as crypto from '../../crypto/index.ts';
import type { KeyProblem, Recipient } from '../../crypto/index.ts';
import type { Member } from '../../config/types.ts';
import { accept } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { describeProblems, keyUsability } from '../keyring.ts';
import { mixedEntity, textEntity } from '../mime.ts';
import { adminAddresses, buildNotice } from '../notices.ts';
import { confirmedSubscribers } from '../subscribers.ts';
import { recordPostDeliveries } from '../../advisories/audit.ts';

export async function fanOut(context: MessageContext): Promise<StageResult> {
  const { clean, list, config, services } = context;
  if (!clean) throw new Error('fan-out ran before build-clean-copy');
  const now = services.now();
  const posterAddress = context.from?.address;
  const skipPoster = (address: string) => !list.sendToPoster && address === posterAddress;

  if (list.kind === 'public') {
    const addresses = new Set<string>();
    for (const member of list.members) if (member.roles.includes('recipient')) addresses.add(member.address);
    for (const address of confirmedSubscribers(services.db, list.name)) addresses.add(address);
    const recipients = [...addresses].filter((address) => !skipPoster(address));
    if (recipients.length === 0) return accept();
    const signed = await crypto.signMime({
      listKey: context.listKey,
      content: mixedEntity([textEntity(clean.note), clean.content]),
      headers: [...clean.protectedHeaders, ...clean.outerHeaders.filter(([name]) => !clean.protectedHeaders.some(([own]) => own.toLowerCase() === name.toLowerCase()))],
    });
    // Every copy is the same signed message: stored once as the payload, an empty head per recipient.
    context.outgoing.push({
      payload: signed,
      copies: recipients.map((recipient) => ({ recipient, head: Buffer.alloc(0), messageId: clean.messageId })),
    });
    return accept();
  }

  const usable: Recipient[] = [];
  const withheld: Array<{ member: Member; problems: KeyProblem[] }> = [];
  for (const member of list.members) {
    if (!member.roles.includes('recipient') || skipPoster(member.address)) continue;
    if (usable.some((recipient) => recipient.address === member.address)) continue;
    const usability = await keyUsability(member, now);
    if (usability.usable) usable.push({ address: member.address, key: usability.key });
    else withheld.push({ member, problems: usability.problems });
  }
  if (usable.length > 0) {
    const sealed = await crypto.sealFanout({
      listKey: context.listKey,
      content: clean.content,
      protectedHeaders: clean.protectedHeaders,
      note: clean.note,
      outerHeaders: clean.outerHeaders,
      recipients: usable,
    });
    context.outgoing.push({
      payload: sealed.payload,
      copies: sealed.copies.map((copy) => ({ recipient: copy.address, head: copy.head, tail: copy.tail, messageId: clean.messageId })),
    });
  }
  if (withheld.length > 0) await noticeWithheld(context, withheld, now);
  if (context.advisory) await recordAdvisoryAudit(context, context.advisory.advisoryId, usable, withheld, now);
  return accept();
}

/** The audit trail of an advisory revision: every member, the key their copy was encrypted to, or why it was withheld. */
async function recordAdvisoryAudit(
  context: MessageContext,
  advisoryId: string,
  usable: Recipient[],
  withheld: Array<{ member: Member; problems: KeyProblem[] }>,
  now: Date,
): Promise<void> {
  const { list, services, clean } = context;
  const organisationOf = (address: string) => list.members.find((member) => member.address === address)?.organisation ?? null;
  const copies: Array<{ address: string; organisation: string | null; fingerprint: string; encryptedTo: string }> = [];
  for (const recipient of usable) {
    copies.push({
      address: recipient.address,
      organisation: organisationOf(recipient.address),
      fingerprint: recipient.key.fingerprint,
      encryptedTo: await crypto.encryptionKeyFingerprint(recipient.key, now),
    });
  }
  const unusable = withheld.map(({ member, problems }) => ({ address: member.address, organisation: member.organisation ?? null, reason: describeProblems(problems) }));
  // Runs in the commit after the queue rows exist, so each audit row is linked to its copy's queue row.
  context.effects.push(() =>
    recordPostDeliveries(services.db, { list: list.name, advisoryId, spoolId: context.spoolId, messageId: clean?.messageId ?? null, copies, withheld: unusable }, now),
  );
}


/** Invariant 1: a recipient we cannot encrypt to gets a signed notice instead of the post; the admins learn who and why. */
async function noticeWithheld(context: MessageContext, withheld: Array<{ member: Member; problems: KeyProblem[] }>, now: Date): Promise<void> {
  const { list, config, listKey, clean } = context;
  if (!clean) throw new Error('withheld notices before build-clean-copy');
  for (const { member, problems } of withheld) {
    const batches = await buildNotice(config, list, listKey, {
      to: [member.address],
      subject: `A message to ${list.name} was withheld from you`,
      text: [
        `A message was posted to ${list.address}, but it was withheld from you:`,
        `the list has no usable OpenPGP key for ${member.address} (${describeProblems(problems)}).`,
        '',
        'This list only ever sends its messages encrypted. Send an updated public key to the list admins',
        `(${list.name}-owner@${config.server.domain}).`,
        ...(list.archive === 'none'
          ? []
          : [
              `Once it is configured, fetch what you missed with a signed request to ${list.name}-request@${config.server.domain}:`,
              '"index" lists the archive, and "get MESSAGE-ID" sends you one message, encrypted.',
            ]),
        '',
        'The message you missed (its Message-ID as the copies carried it):',
        `  Message-ID: <${clean.messageId}>`,
        '',
        `Reference: ${context.spoolId}`,
      ].join('\n'),
      sensitive: false,
      autoSubmitted: 'auto-generated',
    }, now);
    context.outgoing.push(...batches);
  }
  const lines = [
    `A message to ${list.address} (spool id ${context.spoolId}) was withheld from ${withheld.length} member(s) whose key is not usable:`,
    '',
    // No organisation: admins without a key get this in clear, and queue rows must not carry organisations (invariant 9).
    ...withheld.map(({ member, problems }) => `  ${member.address}: ${describeProblems(problems)}`),
    '',
    'Each of them got a signed notice without the message. Update their keys in the list configuration.',
  ];
  context.outgoing.push(
    ...(await buildNotice(config, list, listKey, {
      to: adminAddresses(config, list),
      subject: `${list.name}: message withheld from ${withheld.length} member(s) with unusable keys`,
      text: lines.join('\n'),
      sensitive: false,
      encryptWhenPossible: true,
      autoSubmitted: 'auto-generated',
    }, now)),
  );
}
