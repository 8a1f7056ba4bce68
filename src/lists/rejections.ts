// What a refused sender is told, and what the admins are told: the sender's text never depends on who is a member.
import type { Config, ListConfig } from '../config/types.ts';
import type { RejectCode } from './context.ts';
import { listAddressFor } from './addresses.ts';

/**
 * The bounce body for a refused post. It says what is wrong with the post itself (not encrypted to the list key, an
 * old list key, not signed, attachments outside the signature, too large) but never anything that depends on who is
 * on a private list: every signature that is not from a key allowed to post gets the same words, whether the key is
 * a member's or a stranger's, so the answer cannot be used to probe the membership.
 */
export function rejectionText(config: Config, list: ListConfig, code: RejectCode, spoolId: string, moderatorReason?: string, toSender?: string): string {
  const domain = config.server.domain;
  const owner = listAddressFor(list, 'owner', domain);
  const sendkey = listAddressFor(list, 'sendkey', domain);
  const lines = [`Your message to ${list.address} was not distributed to the list.`, ''];
  const getTheKey = [`To get the list's current key, send any message to ${sendkey};`, 'the reply carries the key, signed by the list.'];
  const signedByRegisteredKey = 'signed (OpenPGP) with the key registered for the address in its From line';
  if (code === 'too-large') {
    lines.push(`It is larger than this list accepts (${list.maxMessageBytes ?? config.server.smtp.maxMessageBytes} bytes). Send a smaller message, or put large files somewhere the members can fetch them.`);
  } else if (code === 'rate-limited') {
    lines.push(`You have sent more than ${list.postsPerHourPerSender} messages to this list within an hour. Please wait and send it again later.`);
  } else if (code === 'moderator-rejected') {
    lines.push('A moderator of the list declined it.');
    if (moderatorReason) lines.push('', `Reason given: ${moderatorReason.replace(/[\r\n]+/g, ' ').slice(0, 500)}`);
  } else if (code === 'stale-signature') {
    // Decided from the signature alone, before membership: saying so reveals nothing about who is on the list.
    lines.push(
      `Its signature was made more than ${config.server.signatures.maxAgeHours} hours before it reached the list, or is dated in the future.`,
      'A signature counts only while it is fresh, so that an old signed message cannot be sent again.',
      'Sign it again now (check your computer\'s clock) and send it again.',
    );
  } else if (code === 'not-for-this-list') {
    lines.push(
      `Its signed To and Cc lines do not name ${list.address}: a signed message counts only for the lists it was addressed to.`,
      `Address it to ${list.address}, sign it again and send it again.`,
    );
  } else if (code === 'bad-input') {
    lines.push('It could not be read: its MIME structure or OpenPGP data is malformed, too deeply nested or too large once decompressed. Send it again from an ordinary mail client.');
  } else if (list.kind === 'public') {
    if (code === 'undecryptable' || code === 'old-list-key') {
      lines.push(`It is encrypted in a way this list cannot read. This list is public: send your message unencrypted, or encrypt it to the list's key, which ${sendkey} sends you.`);
    } else {
      lines.push('It has no usable From address. Send it again from an ordinary mail client.');
    }
  } else if (code === 'not-encrypted' || code === 'undecryptable') {
    lines.push("It was not encrypted to this list's OpenPGP key. This list takes only messages encrypted to its own key", `and ${signedByRegisteredKey}.`, '', ...getTheKey);
  } else if (code === 'old-list-key') {
    lines.push(
      'It was encrypted to a key this list no longer uses: the list has a new OpenPGP key.',
      'Replace the old list key in your keyring with the new one, then send your message again encrypted to it.',
      '',
      ...getTheKey,
    );
  } else if (code === 'unsigned') {
    lines.push(`It is not signed. This list takes only messages ${signedByRegisteredKey}.`, 'Check that your mail client signs (and encrypts) the message, and send it again.');
  } else if (code === 'uncovered-attachment') {
    lines.push(
      'Not all of it is covered by its signature. A message with attachments counts only when the whole message is',
      'signed (PGP/MIME), or when its signed text lists the SHA-256 or SHA-512 checksum of every attachment, as',
      'sha256sum prints it; an HTML alternative or text outside the signed block is not covered either.',
    );
    if (toSender) lines.push('', toSender);
  } else if (list.kind === 'announce' && (code === 'bad-signature' || code === 'not-authorized')) {
    const discussion = list.discussionList ? `${list.discussionList}@${domain}` : undefined;
    lines.push(
      `${list.address} is an announcement list: it takes messages only from its posters, ${signedByRegisteredKey}.`,
      'Your message was not signed by such a key.',
      ...(discussion ? ['', `Discussion of what is announced here belongs on ${discussion}.`] : []),
      '',
      `If you believe you should be able to post here, write to ${owner}.`,
    );
  } else if (code === 'bad-signature' || code === 'not-authorized') {
    lines.push(
      `Its signature is not from a key allowed to post to this list. A message counts only when it is ${signedByRegisteredKey},`,
      "and that address is allowed to post here; the From line alone is not enough.",
      '',
      `If you believe you should be able to post here, write to ${owner}.`,
    );
  } else {
    lines.push(
      'This list accepts a message only when',
      '',
      `  1. it is ${signedByRegisteredKey},`,
      '     by someone allowed to post to this list, and',
      `  2. it is encrypted to the list's own key. To get that key, send any message to`,
      `     ${sendkey}; the reply carries the key, signed by the list.`,
      '',
      'Check that your mail client signs and encrypts (PGP/MIME), with the key the list knows for you,',
      `and send your message again. If you believe you should be able to post here, write to ${owner}.`,
    );
  }
  lines.push('', `Reference: ${spoolId}`);
  return lines.join('\n');
}

/** Words for the admins' notice: the precise reason, never the content. */
export function rejectionSummary(list: ListConfig, code: RejectCode, detail: string, spoolId: string, envelopeFrom: string, from: string | null): string {
  return [
    `A message to ${list.address} was refused.`,
    '',
    `Spool id:       ${spoolId}`,
    `Reason:         ${code}: ${detail}`,
    `Envelope from:  ${envelopeFrom || '<>'}`,
    `From header:    ${from ?? '(none)'}`,
    '',
    'The original is attached as received (for encrypted lists: still encrypted to the list key).',
    'The sender was told what is wrong with the post itself; the bounce does not say who is a member.',
  ].join('\n');
}
