// The archive's HTML pages, one function each, from data the server already read; every value is escaped.
import type { ListConfig } from '../config/types.ts';
import type { ArchiveSummary } from '../archive/queries.ts';
import { listPath, messagePath, monthPath, threadPath } from '../archive/urls.ts';
import { Html, html, page } from './html.ts';
import type { RenderedMessage } from './render-message.ts';

export function formatDate(date: Date | null): string {
  if (!date) return '';
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "1 message", "2 messages", "3 threads". */
function counted(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function senderLabel(summary: ArchiveSummary): string {
  return summary.senderName || summary.senderAddress || 'unknown sender';
}

function messageLine(summary: ArchiveSummary): Html {
  return html`<a href="${messagePath(summary.list, summary.messageId)}">${summary.subject || '(no subject)'}</a>
<span class="meta">${senderLabel(summary)} · <time datetime="${(summary.sentAt ?? summary.receivedAt).toISOString()}">${formatDate(summary.sentAt ?? summary.receivedAt)}</time></span>`;
}

function searchForm(list: string, query = ''): Html {
  return html`<form class="search" method="get" action="/lists/${encodeURIComponent(list)}/search" role="search">
<label for="q" class="meta">Search</label>
<input type="search" id="q" name="q" value="${query}" maxlength="200">
<button type="submit">Search</button>
</form>`;
}

export interface KeyListing {
  list: ListConfig;
  fingerprint: string | null;
}

export function indexPage(publicLists: Array<{ list: ListConfig; count: number }>, keys: KeyListing[]): string {
  return page({
    title: 'Mailing list archives',
    body: html`<h1>Mailing list archives</h1>
${
  publicLists.length === 0
    ? html`<p>No public archives.</p>`
    : html`<ul class="lists">${publicLists.map(
        ({ list, count }) =>
          html`<li><a href="${listPath(list.name)}">${list.name}</a> <span class="count">${counted(count, 'message')}</span><br><span class="meta">${list.description}</span></li>`,
      )}</ul>`
}
<h2>List keys</h2>
<p class="meta">Encrypt to a list with its key. Mail clients also find these keys by Web Key Directory.</p>
<ul class="lists">${keys.map(
      ({ list, fingerprint }) =>
        html`<li>${list.address} ${fingerprint ? html`<a href="/keys/${encodeURIComponent(list.name)}.asc">key</a><br><code class="fingerprint">${fingerprint}</code>` : html`<span class="meta">no key yet</span>`}</li>`,
    )}</ul>`,
  });
}

export function listPage(list: ListConfig, months: Array<{ month: string; count: number }>): string {
  return page({
    title: `${list.name} archive`,
    breadcrumbs: [[listPath(list.name), list.name]],
    feed: `/lists/${encodeURIComponent(list.name)}/atom.xml`,
    body: html`<h1>${list.name}</h1>
<p>${list.description}</p>
<p class="meta">Post to ${list.address} · <a href="/lists/${encodeURIComponent(list.name)}/atom.xml">Atom feed</a> · <a href="/keys/${encodeURIComponent(list.name)}.asc">list key</a></p>
${searchForm(list.name)}
<h2>By month</h2>
${
  months.length === 0
    ? html`<p>No messages yet.</p>`
    : html`<ul class="months">${months.map(
        ({ month, count }) =>
          html`<li><a href="${monthPath(list.name, month)}">${month}</a> <span class="count">${counted(count, 'message')}</span> · <a href="${monthPath(list.name, month)}mbox" download>mbox</a></li>`,
      )}</ul>`
}`,
  });
}

/** Groups a month's messages into threads, each in order of arrival, threads by their first message. */
export function monthPage(list: ListConfig, month: string, messages: ArchiveSummary[]): string {
  const threads = new Map<number, ArchiveSummary[]>();
  for (const message of messages) {
    const thread = threads.get(message.threadId) ?? [];
    thread.push(message);
    threads.set(message.threadId, thread);
  }
  return page({
    title: `${list.name} ${month}`,
    breadcrumbs: [
      [listPath(list.name), list.name],
      [monthPath(list.name, month), month],
    ],
    feed: `/lists/${encodeURIComponent(list.name)}/atom.xml`,
    body: html`<h1>${list.name}: ${month}</h1>
<p class="meta">${counted(messages.length, 'message')} in ${counted(threads.size, 'thread')} · <a href="${monthPath(list.name, month)}mbox" download>download mbox</a></p>
<ul class="threads">${[...threads.values()].map(
      (thread) =>
        html`<li><a href="${threadPath(list.name, thread[0]!.messageId)}">${thread[0]!.subject || '(no subject)'}</a> <span class="count">${counted(thread.length, 'message')}</span>
<ul>${thread.map((message) => html`<li>${messageLine(message)}</li>`)}</ul></li>`,
    )}</ul>`,
  });
}

function headerList(list: ListConfig, rendered: RenderedMessage, summary: ArchiveSummary, parentArchived: boolean): Html {
  return html`<dl class="headers">
<dt>From</dt><dd>${rendered.from}</dd>
<dt>Date</dt><dd>${formatDate(rendered.date ?? summary.receivedAt)}</dd>
${rendered.to ? html`<dt>To</dt><dd>${rendered.to}</dd>` : ''}
${rendered.cc ? html`<dt>Cc</dt><dd>${rendered.cc}</dd>` : ''}
<dt>Message-ID</dt><dd>${summary.messageId}</dd>
${
  rendered.inReplyTo
    ? html`<dt>In reply to</dt><dd>${parentArchived ? html`<a href="${messagePath(list.name, rendered.inReplyTo)}">${rendered.inReplyTo}</a>` : rendered.inReplyTo}</dd>`
    : ''
}
</dl>`;
}

function attachmentList(list: ListConfig, summary: ArchiveSummary, rendered: RenderedMessage): Html | '' {
  if (rendered.attachments.length === 0) return '';
  return html`<h3>Attachments</h3>
<ul class="attachments">${rendered.attachments.map(
    (attachment, index) =>
      html`<li><a href="${messagePath(list.name, summary.messageId)}/attachment/${index}" download>${attachment.filename || `attachment-${index + 1}`}</a> <span class="meta">${attachment.contentType}, ${attachment.size} bytes</span></li>`,
  )}</ul>`;
}

export function messagePage(list: ListConfig, summary: ArchiveSummary, rendered: RenderedMessage, parentArchived: boolean): string {
  return page({
    title: rendered.subject,
    breadcrumbs: [
      [listPath(list.name), list.name],
      [monthPath(list.name, summary.receivedAt.toISOString().slice(0, 7)), summary.receivedAt.toISOString().slice(0, 7)],
    ],
    body: html`<article class="message">
<h1>${rendered.subject}</h1>
${headerList(list, rendered, summary, parentArchived)}
${rendered.body}
${attachmentList(list, summary, rendered)}
</article>
<p><a href="${threadPath(list.name, summary.messageId)}">Whole thread</a> · <a href="${threadPath(list.name, summary.messageId)}/mbox" download>thread as mbox</a></p>`,
  });
}

export function threadPage(list: ListConfig, messages: Array<{ summary: ArchiveSummary; rendered: RenderedMessage }>): string {
  const first = messages[0]!;
  return page({
    title: first.rendered.subject,
    breadcrumbs: [
      [listPath(list.name), list.name],
      [threadPath(list.name, first.summary.messageId), 'thread'],
    ],
    body: html`<h1>${first.rendered.subject}</h1>
<p class="meta">${messages.length} ${messages.length === 1 ? 'message' : 'messages'} · <a href="${threadPath(list.name, first.summary.messageId)}/mbox" download>download thread as mbox</a></p>
${messages.map(
  ({ summary, rendered }) => html`<article class="message" id="m${summary.id}">
<h2><a href="${messagePath(list.name, summary.messageId)}">${rendered.subject}</a></h2>
${headerList(list, rendered, summary, messages.some((other) => other.summary.messageId === rendered.inReplyTo))}
${rendered.body}
${attachmentList(list, summary, rendered)}
</article>`,
)}`,
  });
}

export function searchPage(list: ListConfig, query: string, results: ArchiveSummary[], offset: number, pageSize: number): string {
  const base = `/lists/${encodeURIComponent(list.name)}/search?q=${encodeURIComponent(query)}`;
  return page({
    title: `Search ${list.name}`,
    breadcrumbs: [[listPath(list.name), list.name]],
    body: html`<h1>Search ${list.name}</h1>
${searchForm(list.name, query)}
${
  query.trim() === ''
    ? ''
    : results.length === 0
      ? html`<p>No messages match.</p>`
      : html`<ul class="messages">${results.map((summary) => html`<li>${messageLine(summary)}</li>`)}</ul>`
}
<p>${offset > 0 ? html`<a href="${base}&amp;offset=${Math.max(0, offset - pageSize)}">newer</a> ` : ''}${
      results.length === pageSize ? html`<a href="${base}&amp;offset=${offset + pageSize}">older</a>` : ''
    }</p>`,
  });
}

export function notFoundPage(): string {
  return page({ title: 'Not found', body: html`<h1>Not found</h1><p>There is nothing public at this address.</p>` });
}
