// Mail to NAME-request@: help, sendkey, double opt-in (un)subscription on public lists, signed member and moderator requests.
import { simpleParser } from 'mailparser';
import * as crypto from '../../crypto/index.ts';
import { archiveIndex, findArchived, findArchivedBySpoolId } from '../../archive/queries.ts';
import type { Member } from '../../config/types.ts';
import type { MessageContext } from '../context.ts';
import { parseCommands } from '../commands.ts';
import type { Command } from '../commands.ts';
import { decodeWords, headerValue } from '../headers.ts';
import { memberKey, signingMembers } from '../keyring.ts';
import { attachedMessage, textAttachment } from '../mime.ts';
import { decide, getHeld } from '../moderation.ts';
import { buildNotice } from '../notices.ts';
import { takeNoticeBudget } from '../reply-budget.ts';
import { detectLoop } from '../stages/detect-loop.ts';
import { applyToken, findToken, insertToken, isSubscribed, newToken, tokenLifetimeMs } from '../subscribers.ts';
import { listAddressFor } from '../addresses.ts';
import type { RoleOutcome } from './outcome.ts';
import { keyReply, replyAddress } from './sendkey.ts';
import { advisoryCommand } from './advisory-command.ts';

interface RequestState {
  context: MessageContext;
  /** The member whose registered key signed this request and whose address is in From. */
  requester: Member | null;
  replyTo: string;
  subject: string;
  transcript: string[];
  /** Mail that carries list content for the requester: sent encrypted to them only. */
  privateAttachments: Buffer[];
  subjectSigned: boolean;
  opened: crypto.OpenedMessage | null;
  /** Within the list's daily limit of automatic replies to replyTo: the commands run either way, the replies only then. */
  mayReply: boolean;
}

export async function handleRequest(context: MessageContext): Promise<RoleOutcome> {
  const loop = detectLoop(context);
  if (loop.kind === 'discard') return { state: 'discarded', outcome: 'discard', reason: `request: ${loop.reason}` };
  const replyTo = replyAddress(context);
  if (!replyTo) return { state: 'discarded', outcome: 'discard', reason: 'request: no address to reply to' };

  const { list } = context;
  const opened = await crypto.openMessage(context.raw, { listKey: context.listKey, members: await signingMembers(list) });
  const entity = opened.ok ? opened.message.entity : context.raw;
  // Hostile structure (deeper or wider than mailparser allows) is bad input: the Subject may still carry a command.
  const bodyText = await simpleParser(entity, { skipHtmlToText: false, skipImageLinks: true, skipTextLinks: true }).then(
    (parsed) => parsed.text ?? '',
    () => '',
  );
  const protectedSubject = opened.ok ? opened.message.protectedHeaders.Subject ?? opened.message.protectedHeaders.subject : undefined;
  const subject = protectedSubject ?? decodeWords(headerValue(context.outer.headers, 'Subject') ?? '');
  const { commands, unknown } = parseCommands(subject, bodyText);

  let requester: Member | null = null;
  const verification = opened.ok ? opened.message.verification : null;
  if (verification?.valid && context.from) {
    const fromMember = list.members.find((member) => member.address === context.from?.address) ?? null;
    const named = verification.memberAddress?.toLowerCase();
    if (fromMember && (named === fromMember.address || (await fingerprintMatches(fromMember, verification.signingFingerprint)))) {
      requester = fromMember;
    }
  }

  const state: RequestState = {
    context,
    requester,
    replyTo,
    subject,
    // A Subject is signed only when it came from inside the signed entity; an outer one is anybody's.
    subjectSigned:
      protectedSubject !== undefined &&
      opened.ok &&
      opened.message.verification.valid &&
      opened.message.signatureCovers === 'entity' &&
      // A clearsignature covers its text only, not the header fields of the entity around it.
      !opened.message.entity.includes('-----BEGIN PGP SIGNED MESSAGE-----'),
    transcript: [],
    privateAttachments: [],
    opened: opened.ok ? opened.message : null,
    mayReply: takeNoticeBudget(context, 'reply', replyTo),
  };
  if (commands.length === 0) commands.push({ name: 'help', args: [], line: '(no command found)', source: 'body' });
  for (const command of commands) await run(state, command);
  if (unknown.length > 0) state.transcript.push('', `Ignored ${unknown.length} line(s) that are not commands. Send "help" for the list of commands.`);

  const done = `request: ${commands.map((command) => command.name).join(', ')}`;
  if (!state.mayReply) return { state: 'done', outcome: 'done', reason: `${done} (reply withheld: over the daily limit for this address)` };
  context.outgoing.push(
    ...(await buildNotice(context.config, list, context.listKey, {
      to: [replyTo],
      subject: `Re: your request to ${list.name}-request`,
      text: state.transcript.join('\n'),
      attachments: state.privateAttachments,
      // Anything from a private list's archive goes to the verified member only, encrypted.
      sensitive: state.privateAttachments.length > 0,
      encryptWhenPossible: list.kind !== 'public' && requester !== null,
      fromRole: 'request',
      inReplyTo: context.messageId,
      autoSubmitted: 'auto-replied',
    }, context.services.now())),
  );
  return { state: 'done', outcome: 'done', reason: done };
}

async function fingerprintMatches(member: Member, fingerprint: string | undefined): Promise<boolean> {
  const key = await memberKey(member);
  return Boolean(key && fingerprint && key.fingerprint.toUpperCase() === fingerprint.toUpperCase());
}

async function run(state: RequestState, command: Command): Promise<void> {
  const { context, transcript } = state;
  const { list, config, services } = context;
  const domain = config.server.domain;
  transcript.push(`> ${command.line}`);
  const isPublic = list.kind === 'public';
  // The same words for non-members and for members whose request was not signed: nothing tells who is on the list.
  const needsSignature = `This command needs a request signed with the OpenPGP key registered for your address (and encrypted to the list key, which ${listAddressFor(list, 'sendkey', domain)} sends you).`;
  switch (command.name) {
    case 'help':
      transcript.push(helpText(context), '');
      return;
    case 'sendkey':
      if (state.mayReply) context.outgoing.push(...(await keyReply(context, state.replyTo)));
      transcript.push('The list key is on its way in a separate message.', '');
      return;
    case 'subscribe':
    case 'unsubscribe': {
      if (!isPublic) {
        transcript.push(`Membership of ${list.address} is managed by its owners. Write to ${listAddressFor(list, 'owner', domain)}.`, '');
        return;
      }
      const address = context.from?.address ?? state.replyTo;
      if (list.members.some((member) => member.address === address)) {
        transcript.push(`${address} is in the list's configuration; its owners (${listAddressFor(list, 'owner', domain)}) can change that.`, '');
        return;
      }
      const subscribed = isSubscribed(services.db, list.name, address);
      if (command.name === 'subscribe' ? subscribed : !subscribed) {
        transcript.push(`${address} is ${subscribed ? 'already' : 'not'} subscribed to ${list.address}.`, '');
        return;
      }
      // No confirmation either past the daily limit: subscription requests in someone else's name must not flood them.
      if (!state.mayReply) return;
      // Double opt-in: only someone who reads mail at that address can confirm.
      const now = services.now().getTime();
      const token = newToken();
      const action = command.name;
      context.effects.push(() => insertToken(services.db, { token, list: list.name, address, action, now }));
      context.outgoing.push(
        ...(await buildNotice(config, list, context.listKey, {
          to: [address],
          subject: `confirm ${token}`,
          text: [
            `Someone (hopefully you) asked to ${command.name} ${address} ${command.name === 'subscribe' ? 'to' : 'from'} ${list.address}.`,
            '',
            `To confirm, reply to this message keeping its subject, or send a message to ${listAddressFor(list, 'request', domain)}`,
            `with this line:`,
            '',
            `  confirm ${token}`,
            '',
            `The request expires in ${Math.round(tokenLifetimeMs / 3_600_000)} hours. If you did not ask for this, ignore this message.`,
          ].join('\n'),
          sensitive: false,
          fromRole: 'request',
          replyToRole: 'request',
          autoSubmitted: 'auto-replied',
        }, services.now())),
      );
      transcript.push(`A confirmation request was sent to ${address}.`, '');
      return;
    }
    case 'confirm': {
      const token = command.args[0];
      if (!isPublic || !token) {
        transcript.push(isPublic ? 'confirm needs the token from the confirmation message.' : 'There is nothing to confirm on this list.', '');
        return;
      }
      const result = confirmNow(context, token);
      transcript.push(result, '');
      return;
    }
    case 'list-keys': {
      if (!state.requester) {
        transcript.push(needsSignature, '');
        return;
      }
      transcript.push(`Members of ${list.address} and their registered keys:`);
      for (const member of list.members) {
        const key = await memberKey(member);
        transcript.push(`  ${member.address}${member.organisation ? ` (${member.organisation})` : ''}: ${key ? key.fingerprint : 'no usable key'}`);
      }
      transcript.push(`List key: ${context.listKey.fingerprint}`, '');
      return;
    }
    case 'get': {
      if (!state.requester && !isPublic) {
        transcript.push(needsSignature, '');
        return;
      }
      const messageId = (command.args[0] ?? '').replace(/^<|>$/g, '');
      // The poster's Message-ID (from the copy or the index), or the one the copies carried on the wire (SPOOLID.LIST@DOMAIN,
      // what a withheld notice names, since the poster's own id never travels in clear).
      const wireSpoolId = new RegExp(`^([0-9a-z]{15})\\.${list.name.replace(/[.]/g, '\\.')}@${domain.replace(/[.]/g, '\\.')}$`, 'i').exec(messageId)?.[1];
      const found = messageId
        ? ((await findArchived(services.db, list, messageId, context.listKey)) ?? (wireSpoolId ? await findArchivedBySpoolId(services.db, list, wireSpoolId, context.listKey) : null))
        : null;
      if (!found) {
        transcript.push(`No archived message with that Message-ID on ${list.address}.`, '');
        return;
      }
      if (isPublic && state.mayReply) context.outgoing.push(...(await publicCopy(context, state.replyTo, found)));
      else state.privateAttachments.push(attachedMessage(found, 'archived.eml'));
      transcript.push('The archived message is attached.', '');
      return;
    }
    case 'advisory': {
      const signedLine = command.source === 'body' || state.subjectSigned;
      transcript.push(await advisoryCommand(context, state.requester, command, signedLine, state.opened), '');
      return;
    }
    case 'index': {
      if (!state.requester && !isPublic) {
        transcript.push(needsSignature, '');
        return;
      }
      transcript.push(...(await indexReply(state, command.args[0])), '');
      return;
    }
    case 'approve':
    case 'reject': {
      const moderator = state.requester && (state.requester.roles.includes('moderator') || state.requester.roles.includes('admin'));
      if (!moderator || !state.requester) {
        transcript.push(needsSignature, '');
        return;
      }
      // Without an id ("approve", "reject off topic") in a reply to the notice: the held id is in the Subject we wrote.
      const looksLikeId = (word: string | undefined) => Boolean(word && /^[0-9A-HJKMNP-TV-Z]{15}$/i.test(word) && /\d/.test(word));
      const explicit = looksLikeId(command.args[0]) ? command.args[0] : undefined;
      const id = explicit ?? /\(([0-9A-Z]{15})\)/.exec(state.subject)?.[1];
      if (!id) {
        transcript.push(`${command.name} needs the held id from the moderation notice.`, '');
        return;
      }
      const held = getHeld(services.db, id.toUpperCase());
      if (!held || held.list !== list.name || held.decision !== 'pending') {
        transcript.push(`There is no post waiting for a decision under ${id} on ${list.address}.`, '');
        return;
      }
      const by = state.requester.address;
      const reason = command.args.slice(explicit ? 1 : 0).join(' ') || undefined;
      const now = services.now().getTime();
      // Applied with this request's commit; the worker then picks the post up again and carries the decision out.
      context.effects.push(() => {
        decide(services.db, { id, approve: command.name === 'approve', by, reason, now, list: list.name });
      });
      transcript.push(
        command.name === 'approve' ? `Approved ${held.id}: it goes to the list now.` : `Rejected ${held.id}: the sender gets a bounce${reason ? ' with your reason' : ''}.`,
        '',
      );
      return;
    }
  }
}

/** At most this many lines per index reply (the newest); `index SINCE` narrows it down. */
const maxIndexEntries = 500;

/**
 * `index [SINCE]`: the archive's messages — date received, Message-ID, subject, sender's organisation — for `get`.
 * On private lists the index is list content: it goes out as an attachment, so only ever encrypted to the member.
 */
async function indexReply(state: RequestState, sinceWord: string | undefined): Promise<string[]> {
  const { list, services, listKey } = state.context;
  const since = sinceWord ? new Date(/^\d{4}-\d{2}-\d{2}$/.test(sinceWord) ? `${sinceWord}T00:00:00Z` : sinceWord) : null;
  if (since && Number.isNaN(since.getTime())) return [`index SINCE needs a date such as 2026-01-31 (or an RFC 3339 time), not "${sinceWord?.slice(0, 40)}".`];
  if (list.archive === 'none') return [`${list.address} keeps no archive.`];
  const entries = await archiveIndex(services.db, list, listKey, since);
  if (entries.length === 0) return [`The archive of ${list.address} holds no messages${since ? ` since ${since.toISOString()}` : ''}.`];
  const shown = entries.slice(-maxIndexEntries);
  const organisation = (address: string) => list.members.find((member) => member.address === address.toLowerCase())?.organisation ?? address;
  const lines = shown.map((entry) => `${entry.receivedAt.toISOString().slice(0, 16).replace('T', ' ')}Z  <${entry.messageId}>  ${organisation(entry.senderAddress)}  ${entry.subject.replace(/[\r\n]+/g, ' ')}`);
  const heading = [
    `Archive of ${list.address}${since ? ` since ${since.toISOString()}` : ''}: ${entries.length} message(s)${entries.length > shown.length ? `, the newest ${shown.length} shown` : ''}.`,
    'Received (UTC), Message-ID, sender organisation, subject (as it came inside the encryption). Send "get MESSAGE-ID" for one of them.',
  ];
  if (list.kind === 'public') return [...heading, '', ...lines];
  state.privateAttachments.push(textAttachment([...heading, '', ...lines].join('\n'), 'index.txt'));
  return [`The index (${shown.length} message(s)) is attached. Send "get MESSAGE-ID" for any of them.`];
}

function confirmNow(context: MessageContext, token: string): string {
  const { services, list } = context;
  const now = services.now().getTime();
  const pending = findToken(services.db, list.name, token);
  if (!pending) return 'That confirmation token is unknown or was used already.';
  if (pending.expiresAt < now) return 'That confirmation token has expired; send the request again.';
  context.effects.push(() => applyToken(services.db, list.name, pending, now));
  return pending.action === 'subscribe'
    ? `${pending.address} is now subscribed to ${list.address}.`
    : `${pending.address} is unsubscribed from ${list.address}.`;
}

async function publicCopy(context: MessageContext, to: string, message: Buffer) {
  return buildNotice(context.config, context.list, context.listKey, {
    to: [to],
    subject: `Archived message from ${context.list.name}`,
    text: 'The archived message you asked for is attached.',
    attachments: [attachedMessage(message, 'archived.eml')],
    sensitive: false,
    fromRole: 'request',
    autoSubmitted: 'auto-replied',
  }, context.services.now());
}

function helpText(context: MessageContext): string {
  const { list, config } = context;
  const domain = config.server.domain;
  const request = listAddressFor(list, 'request', domain);
  const lines = [
    `Commands for ${list.address} (${list.description || list.kind + ' list'}), sent to ${request}, one per line:`,
    '',
    '  help                   this text',
    '  sendkey                the list\'s OpenPGP public key (also: any mail to ' + listAddressFor(list, 'sendkey', domain) + ')',
  ];
  if (list.kind === 'public') {
    lines.push(
      '  subscribe              join the list (you confirm by replying to a confirmation message)',
      '  unsubscribe            leave the list (confirmed the same way)',
      '  confirm TOKEN          confirm a subscribe or unsubscribe',
      '  index [SINCE]          what the archive holds (date, Message-ID, sender, subject)',
      '  get MESSAGE-ID         an archived message',
    );
  } else {
    lines.push(
      '',
      'Members, in a request signed with their registered key:',
      '  list-keys              the members\' registered key fingerprints',
      '  index [SINCE]          what the archive holds (date, Message-ID, sender, subject), encrypted to you',
      '  get MESSAGE-ID         an archived message, encrypted to you',
      ...(list.kind === 'announce'
        ? [
            'Posters and admins (signed, in the body):',
            '  advisory postpone ID DATE  move an advisory\'s embargo end (RFC 3339, e.g. 2027-01-15T12:00:00Z)',
            '  advisory cancel ID         do not publish the advisory',
            '  advisory release ID        publish the advisory now',
          ]
        : []),
      'Moderators:',
      '  approve ID             distribute a held post',
      '  reject ID REASON       refuse a held post; the sender gets REASON',
    );
  }
  lines.push('', `To reach the people who run the list, write to ${listAddressFor(list, 'owner', domain)}.`);
  return lines.join('\n');
}
