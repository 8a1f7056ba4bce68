// Stage build-clean-copy: the post as the list redistributes it — rewritten From, list headers, the verification note.
import { proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { decodeWords, headerValue, splitMessage } from '../headers.ts';
import type { HeaderList } from '../headers.ts';
import { archivedAtUrl, listHeaders, replyToFor, rewrittenFrom, subjectHeader, threadingHeaders } from '../outgoing-headers.ts';

/** Generous for real mail (long References chains, big Cc lists), far below what breaks MIME parsers (1 MiB). */
export const maxCopiedHeaderBytes = 64 * 1024;

export function buildCleanCopy(context: MessageContext): StageResult {
  const { opened, inner, list, config } = context;
  if (!opened || !inner) throw new Error('build-clean-copy ran before decrypt');
  // Protected headers (inside the ciphertext) win over the entity's, which win over the outer ones.
  const pick = (name: string): string | undefined =>
    Object.entries(opened.protectedHeaders).find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1] ??
    headerValue(inner.headers, name) ??
    headerValue(context.outer.headers, name);
  // The original Message-ID is kept on every copy: threads hold, and duplicates after a crash are recognisable.
  const messageId = context.messageId ?? `${context.spoolId.toLowerCase()}@${config.server.domain}`;
  const subject = decodeWords(pick('Subject') ?? '');
  const date = pick('Date') ?? context.receivedAt.toUTCString().replace('GMT', '+0000');
  const threading = threadingHeaders(context.outer.headers).length > 0 ? threadingHeaders(context.outer.headers) : threadingHeaders(inner.headers);

  const protectedHeaders: HeaderList = [
    ['From', rewrittenFrom(list, context.from, context.poster)],
    ['To', list.address],
    ['Date', date],
    ['Message-ID', `<${messageId}>`],
    subjectHeader(subject),
  ];
  const cc = pick('Cc');
  if (cc) protectedHeaders.push(['Cc', cc]);
  const replyTo = replyToFor(list, context.from);
  if (replyTo) protectedHeaders.push(['Reply-To', replyTo]);
  protectedHeaders.push(...threading);

  const outerHeaders: HeaderList = [
    ['From', rewrittenFrom(list, context.from, context.poster)],
    ['To', list.address],
    ['Date', date],
    ['Message-ID', `<${messageId}>`],
    ...(replyTo ? ([['Reply-To', replyTo]] as HeaderList) : []),
    ...threading,
    ...listHeaders(config, list),
    ['Precedence', 'list'],
    ['X-Loop', list.address],
  ];
  if (list.kind === 'public' && list.archive === 'public') {
    const url = archivedAtUrl(config, list, messageId);
    if (url) outerHeaders.push(['Archived-At', `<${url}>`]);
  }
  // Header fields copied from the post (Subject, References, Cc, the entity's Content-* fields) go into every copy and
  // the archive; megabytes of them would make mail that relays refuse and parsers throw on. Refused, not trimmed.
  const copiedBytes = [...protectedHeaders, ...outerHeaders, ...splitMessage(opened.entity).headers.filter(([name]) => /^content-/i.test(name))].reduce(
    (total, [name, value]) => total + name.length + value.length + 4,
    0,
  );
  if (copiedBytes > maxCopiedHeaderBytes) return reject('bad-input', `header fields of ${copiedBytes} bytes to copy, limit ${maxCopiedHeaderBytes}`);
  context.clean = { content: opened.entity, protectedHeaders, outerHeaders, note: verificationNote(context), messageId };
  return proceed;
}

/** What readers see first: who sent it, whether and by which key it was signed, whether it came encrypted. */
export function verificationNote(context: MessageContext): string {
  const { opened, from, poster, signer } = context;
  const verification = opened?.verification;
  const who = from ? `${from.name ? `${from.name} ` : ''}<${from.address}>` : '(no From address)';
  const lines = [`Posted to ${context.list.address} by ${who}${poster?.organisation ? ` (${poster.organisation})` : ''}.`];
  if (verification?.valid && opened?.signatureCovers === 'part') {
    lines.push('Only one text part is signed; the other parts (an HTML alternative, attachments) are not: treat the sender as unconfirmed.');
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
  lines.push(opened?.encrypted ? 'It reached the list encrypted.' : 'It reached the list unencrypted.');
  return lines.join('\n');
}
