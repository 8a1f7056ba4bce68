// Stage build-clean-copy: the post as the list redistributes it — rewritten From, list headers, the verification note.
import { proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { decodeWords, firstMailbox, headerValue, messageIdOf, splitMessage } from '../headers.ts';
import type { HeaderList } from '../headers.ts';
import { archivedAtUrl, listFrom, listHeaders, replyToFor, rewrittenFrom, subjectHeader, threadingHeaders } from '../outgoing-headers.ts';
import { signedHeader, signedHeaders } from '../signed-headers.ts';

/** Generous for real mail (long References chains, big Cc lists), far below what breaks MIME parsers (1 MiB). */
export const maxCopiedHeaderBytes = 64 * 1024;

export function buildCleanCopy(context: MessageContext): StageResult {
  const { opened, inner, list, config } = context;
  if (!opened || !inner) throw new Error('build-clean-copy ran before decrypt');
  const encryptedList = list.kind !== 'public';
  // What the signature covers wins; then what came inside the encryption; the outer header only when neither has it.
  const inside = (name: string): string | undefined =>
    signedHeader(context, name) ??
    Object.entries(opened.protectedHeaders).find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1] ??
    headerValue(inner.headers, name);
  const pick = (name: string): string | undefined => inside(name) ?? headerValue(context.outer.headers, name);
  // The poster's Message-ID (inside, when the client protects it) is kept in the copy members decrypt: threads
  // hold, and duplicates after a crash are recognisable.
  const posterMessageId = messageIdOf(inside('Message-ID')) ?? context.messageId ?? `${context.spoolId.toLowerCase()}@${config.server.domain}`;
  const subject = decodeWords(pick('Subject') ?? '');
  const date = pick('Date') ?? mailDate(context.receivedAt);
  const insideThreading = threadingHeaders([...(signedHeaders(context) ?? []), ...inner.headers, ...protectedHeaderList(opened.protectedHeaders)]);
  const threading = insideThreading.length > 0 ? insideThreading : threadingHeaders(context.outer.headers);
  const innerFrom = firstMailbox(inside('From'));
  const shownFrom = innerFrom && innerFrom.address === context.from?.address ? innerFrom : context.from;
  const from = rewrittenFrom(list, shownFrom, context.poster);

  const protectedHeaders: HeaderList = [
    ['From', from],
    ['To', list.address],
    ['Date', date],
    ['Message-ID', `<${posterMessageId}>`],
    subjectHeader(subject),
  ];
  const cc = pick('Cc');
  if (cc) protectedHeaders.push(['Cc', cc]);
  const replyTo = replyToFor(list, context.from);
  if (replyTo) protectedHeaders.push(['Reply-To', replyTo]);
  protectedHeaders.push(...threading);

  // Invariant 9: outside the ciphertext of an encrypted list, an observer learns the list, the recipient and the
  // size. Nothing about the poster (From is the list, no Reply-To) or the thread (the server's own Message-ID, no
  // In-Reply-To or References); the Date is the arrival, not the poster's clock.
  const wireMessageId = encryptedList ? `${context.spoolId.toLowerCase()}.${list.name}@${config.server.domain}` : posterMessageId;
  const outerHeaders: HeaderList = encryptedList
    ? [['From', listFrom(list)], ['To', list.address], ['Date', mailDate(context.receivedAt)], ['Message-ID', `<${wireMessageId}>`]]
    : [['From', from], ['To', list.address], ['Date', date], ['Message-ID', `<${posterMessageId}>`], ...(replyTo ? ([['Reply-To', replyTo]] as HeaderList) : []), ...threading];
  outerHeaders.push(...listHeaders(config, list), ['Precedence', 'list'], ['X-Loop', list.address]);
  if (list.kind === 'public' && list.archive === 'public') {
    const url = archivedAtUrl(config, list, posterMessageId);
    if (url) outerHeaders.push(['Archived-At', `<${url}>`]);
  }
  // Header fields copied from the post (Subject, References, Cc, the entity's Content-* fields) go into every copy and
  // the archive; megabytes of them would make mail that relays refuse and parsers throw on. Refused, not trimmed.
  const copiedBytes = [...protectedHeaders, ...outerHeaders, ...splitMessage(opened.entity).headers.filter(([name]) => /^content-/i.test(name))].reduce(
    (total, [name, value]) => total + name.length + value.length + 4,
    0,
  );
  if (copiedBytes > maxCopiedHeaderBytes) return reject('bad-input', `header fields of ${copiedBytes} bytes to copy, limit ${maxCopiedHeaderBytes}`);
  context.clean = { content: opened.entity, protectedHeaders, outerHeaders, note: verificationNote(context, subject !== '' && !signedHeader(context, 'Subject')), messageId: wireMessageId };
  return proceed;
}

/** What readers see first: who sent it, whether and by which key it was signed, what the signature does not cover. */
export function verificationNote(context: MessageContext, subjectUnsigned = false): string {
  const { opened, from, poster, signer } = context;
  const verification = opened?.verification;
  const who = from ? `${from.name ? `${from.name} ` : ''}<${from.address}>` : '(no From address)';
  const lines = [`Posted to ${context.list.address} by ${who}${poster?.organisation ? ` (${poster.organisation})` : ''}.`];
  const confirmed = Boolean(verification?.valid && signer && opened?.signatureCovers !== 'part' && !context.signatureMisuse);
  if (verification?.valid && opened?.signatureCovers === 'part') {
    lines.push('Only one text part is signed; the other parts (an HTML alternative, attachments) are not: treat the sender as unconfirmed.');
  } else if (verification?.valid && context.signatureMisuse) {
    lines.push(`The signature is valid but was not made for this post (${context.signatureMisuse}): treat the sender as unconfirmed.`);
  } else if (verification?.valid && signer) {
    const when = verification.signedAt ? `, signed ${verification.signedAt.toISOString()}` : '';
    lines.push(`Good signature by the registered key of ${signer.address}: ${verification.signingFingerprint ?? verification.signingKeyId ?? ''}${when}.`);
  } else if (verification?.valid) {
    lines.push(`Good signature by key ${verification.signingFingerprint ?? verification.signingKeyId ?? ''}, which is not registered with this list.`);
  } else if (verification?.signed) {
    lines.push('The signature could not be verified; treat the sender as unconfirmed.');
  } else {
    lines.push('Not signed: the sender is not confirmed.');
  }
  if (confirmed && subjectUnsigned) lines.push('The Subject line is not covered by the signature.');
  if (opened?.droppedParts?.length) lines.push(`Left out, because neither the signature nor the encryption covers them: ${opened.droppedParts.join(', ')}.`);
  if (verification?.valid && opened?.signatureCovers === 'entity') {
    // The XSA shape: the files are not under the signature itself, so readers are told what vouches for each.
    for (const attachment of opened.attachments ?? []) {
      lines.push(`Attachment ${attachment.name}: covered by a checksum in the signed text (${attachment.covered === 'sha512' ? 'SHA-512' : 'SHA-256'}).`);
    }
  }
  lines.push(opened?.encrypted ? 'It reached the list encrypted.' : 'It reached the list unencrypted.');
  return lines.join('\n');
}

/** An RFC 5322 date in UTC. */
function mailDate(date: Date): string {
  return date.toUTCString().replace('GMT', '+0000');
}

function protectedHeaderList(headers: Record<string, string>): HeaderList {
  return Object.entries(headers);
}
