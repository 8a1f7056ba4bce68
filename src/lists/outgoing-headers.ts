// Builds the headers of what a list sends: List-Id (RFC 2919), List-* (RFC 2369), the DMARC-safe From, threading.
import type { Config, ListConfig, Member } from '../config/types.ts';
import { archivedAtUrl as archiveMessageUrl, listPath, publicBaseUrl } from '../archive/urls.ts';
import { listAddressFor } from './addresses.ts';
import { encodeWords, headerValue, quoteDisplayName } from './headers.ts';
import type { HeaderList, Mailbox } from './headers.ts';

/** The list's RFC 2919 identifier, `NAME.DOMAIN`. */
export function listIdOf(list: ListConfig, domain: string): string {
  return `${list.name}.${domain}`;
}

/** The web archive's page of a list, or null when the daemon serves no web pages. */
export function listArchiveUrl(config: Config, list: ListConfig): string | null {
  return config.server.http.enabled ? publicBaseUrl(config) + listPath(list.name) : null;
}

/** RFC 5064 Archived-At of one post, or null when the daemon serves no web pages. */
export function archivedAtUrl(config: Config, list: ListConfig, messageId: string): string | null {
  return config.server.http.enabled ? archiveMessageUrl(config, list.name, messageId) : null;
}

/** The List-* fields every post and list mail carries. */
export function listHeaders(config: Config, list: ListConfig): HeaderList {
  const domain = config.server.domain;
  const mailto = (role: Parameters<typeof listAddressFor>[1], subject?: string) =>
    `<mailto:${listAddressFor(list, role, domain)}${subject ? `?subject=${subject}` : ''}>`;
  const description = list.description.trim();
  const headers: HeaderList = [
    ['List-Id', `${description ? `${quoteDisplayName(description)} ` : ''}<${listIdOf(list, domain)}>`],
    ['List-Post', list.kind === 'announce' ? 'NO' : mailto('post')],
    ['List-Help', mailto('request', 'help')],
    ['List-Owner', mailto('owner')],
    ['List-Unsubscribe', mailto('request', 'unsubscribe')],
  ];
  if (list.kind === 'public' && list.archive === 'public') {
    const archive = listArchiveUrl(config, list);
    if (archive) headers.push(['List-Archive', `<${archive}>`]);
  }
  return headers;
}

/**
 * "Poster Name via LIST" <LIST@DOMAIN>: the list sends, so DMARC checks the list's domain, and readers still see who
 * wrote. The organisation from the config stands in only inside an encrypted list's copies, never on a public list.
 */
export function rewrittenFrom(list: ListConfig, poster: Mailbox | null, member: Member | null | undefined): string {
  const organisation = list.kind === 'public' ? undefined : member?.organisation;
  const who = poster?.name || organisation || poster?.address || 'someone';
  return `${quoteDisplayName(`${who} via ${list.name}`)} <${list.address}>`;
}

/** The list's own name and address: the From of encrypted copies, which says nothing about the poster. */
export function listFrom(list: ListConfig): string {
  return `${quoteDisplayName(list.name)} <${list.address}>`;
}

export function replyToFor(list: ListConfig, poster: Mailbox | null): string | null {
  if (list.replyTo === 'list') return list.address;
  if (list.replyTo === 'poster' && poster) return poster.address;
  return null;
}

/** In-Reply-To and References, kept as the poster wrote them so threads hold together. */
export function threadingHeaders(source: HeaderList): HeaderList {
  const headers: HeaderList = [];
  const inReplyTo = headerValue(source, 'In-Reply-To');
  const references = headerValue(source, 'References');
  if (inReplyTo) headers.push(['In-Reply-To', inReplyTo]);
  if (references) headers.push(['References', references]);
  return headers;
}

export function subjectHeader(subject: string): [string, string] {
  return ['Subject', encodeWords(subject)];
}
