// The archive's HTML pages, one function each, from data the server already read; every value is escaped, every address obfuscated.
import type { ListConfig } from '../config/types.ts';
import { snippetEnd, snippetStart, type ArchiveSummary, type SearchHit } from '../archive/queries.ts';
import { listPath, messagePath, monthPath, threadPath } from '../archive/urls.ts';
import { Html, html, page, trusted, escapeHtml } from './html.ts';
import { obfuscateAddresses } from './obfuscate.ts';
import type { RenderedMessage } from './render-message.ts';
import type { ThreadNode } from './thread-tree.ts';

export function formatDate(date: Date | null): string {
  if (!date) return '';
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "1 message", "2 messages", "3 threads". */
function counted(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function senderLabel(summary: ArchiveSummary): string {
  return obfuscateAddresses(summary.senderName || summary.senderAddress || 'unknown sender');
}

function subjectOf(summary: ArchiveSummary): string {
  return obfuscateAddresses(summary.subject || '(no subject)');
}

function messageLine(summary: ArchiveSummary): Html {
  return html`<a href="${messagePath(summary.list, summary.messageId)}">${subjectOf(summary)}</a>
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

/** What the list page needs beyond the list: its months, its info text as safe HTML, and a fresh subscribe form token. */
export interface ListPageData {
  months: Array<{ month: string; count: number }>;
  info: Html | null;
  subscribeToken: string | null;
}

function subscribeForm(list: ListConfig, token: string): Html {
  return html`<section class="subscribe" aria-labelledby="subscribe-heading">
<h2 id="subscribe-heading">Subscribe</h2>
<form class="subscribe" method="post" action="${listPath(list.name)}subscribe">
<label for="address">Your mail address</label>
<input type="email" id="address" name="address" required maxlength="254" autocomplete="email">
<input type="hidden" name="token" value="${token}">
<button type="submit">Subscribe</button>
</form>
<p class="meta">A confirmation goes to that address; you are subscribed once you reply to it. By mail: send <code>subscribe</code> to ${obfuscateAddresses(list.address.replace('@', '-request@'))}.</p>
</section>`;
}

export function listPage(list: ListConfig, data: ListPageData): string {
  const { months } = data;
  return page({
    title: `${list.name} archive`,
    breadcrumbs: [[listPath(list.name), list.name]],
    feed: `/lists/${encodeURIComponent(list.name)}/atom.xml`,
    body: html`<h1>${list.name}</h1>
<p class="lead">${list.description}</p>
<p class="meta">Post to ${list.address} · <a href="mailto:${list.address}">write to the list</a> · <a href="/lists/${encodeURIComponent(list.name)}/atom.xml">Atom feed</a> · <a href="/keys/${encodeURIComponent(list.name)}.asc">list key</a></p>
${data.info ? html`<section class="info" aria-label="About this list">${data.info}</section>` : ''}
${searchForm(list.name)}
<h2>By month</h2>
${
  months.length === 0
    ? html`<p>No messages yet.</p>`
    : html`<ul class="months">${months.map(
        ({ month, count }) =>
          html`<li><a href="${monthPath(list.name, month)}">${month}</a> <span class="count">${counted(count, 'message')}</span> · <a href="${monthPath(list.name, month)}mbox" download>mbox</a></li>`,
      )}</ul>`
}
${data.subscribeToken ? subscribeForm(list, data.subscribeToken) : ''}`,
  });
}

/** The page after a subscribe form post: what happened, or why nothing did. */
export function subscribeReplyPage(list: ListConfig, outcome: { ok: boolean; message: string }): string {
  return page({
    title: outcome.ok ? `Check your mail: ${list.name}` : `Not subscribed: ${list.name}`,
    breadcrumbs: [[listPath(list.name), list.name]],
    body: html`<h1>${outcome.ok ? 'Check your mail' : 'Nothing was changed'}</h1>
<p class="${outcome.ok ? 'notice' : 'problem'}">${outcome.message}</p>
<p><a href="${listPath(list.name)}">Back to ${list.name}</a></p>`,
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
        html`<li><a href="${threadPath(list.name, thread[0]!.messageId)}">${subjectOf(thread[0]!)}</a> <span class="count">${counted(thread.length, 'message')}</span>
<ul>${thread.map((message) => html`<li>${messageLine(message)}</li>`)}</ul></li>`,
    )}</ul>`,
  });
}

function headerList(list: ListConfig, rendered: RenderedMessage, summary: ArchiveSummary, parent: ArchiveSummary | null): Html {
  return html`<dl class="headers">
<dt>From</dt><dd>${rendered.from}</dd>
<dt>Date</dt><dd>${formatDate(rendered.date ?? summary.receivedAt)}</dd>
${rendered.to ? html`<dt>To</dt><dd>${rendered.to}</dd>` : ''}
${rendered.cc ? html`<dt>Cc</dt><dd>${rendered.cc}</dd>` : ''}
<dt>Message-ID</dt><dd>${summary.messageId}</dd>
${
  rendered.inReplyTo
    ? html`<dt>In reply to</dt><dd>${parent ? html`<a href="${messagePath(list.name, parent.messageId)}">${subjectOf(parent)}</a> <span class="meta">${senderLabel(parent)}</span>` : rendered.inReplyTo}</dd>`
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

/**
 * A mailto: link that answers the message on the list (RFC 6068 allows In-Reply-To and Subject), so the reply
 * lands in this thread. The Subject is the shown one, addresses obfuscated: the link is on a public page too.
 */
export function replyHref(list: ListConfig, summary: ArchiveSummary, subject: string): string {
  const reSubject = /^re:/i.test(subject.trim()) ? subject.trim() : `Re: ${subject.trim()}`;
  return `mailto:${list.address}?In-Reply-To=${encodeURIComponent(`<${summary.messageId}>`)}&subject=${encodeURIComponent(reSubject)}`;
}

function replyLink(list: ListConfig, summary: ArchiveSummary, rendered: RenderedMessage): Html {
  return html`<a class="reply" href="${replyHref(list, summary, rendered.subject)}">reply</a>`;
}

/** Where a message page leads: up, down and along its thread, and to its neighbours by date. */
export interface MessageLinks {
  parent: ArchiveSummary | null;
  replies: ArchiveSummary[];
  threadPrevious: ArchiveSummary | null;
  threadNext: ArchiveSummary | null;
  datePrevious: ArchiveSummary | null;
  dateNext: ArchiveSummary | null;
}

function stepLink(target: ArchiveSummary | null, rel: 'prev' | 'next', label: string): Html {
  if (!target) return html`<span class="meta">${label}</span>`;
  return html`<a rel="${rel}" href="${messagePath(target.list, target.messageId)}" title="${subjectOf(target)}">${label}</a>`;
}

function messageNav(links: MessageLinks): Html {
  return html`<nav class="steps" aria-label="previous and next">
<span>Thread: ${stepLink(links.threadPrevious, 'prev', '‹ previous')} · ${stepLink(links.threadNext, 'next', 'next ›')}</span>
<span>Date: ${stepLink(links.datePrevious, 'prev', '‹ older')} · ${stepLink(links.dateNext, 'next', 'newer ›')}</span>
</nav>`;
}

export function messagePage(list: ListConfig, summary: ArchiveSummary, rendered: RenderedMessage, links: MessageLinks): string {
  const month = summary.receivedAt.toISOString().slice(0, 7);
  return page({
    title: rendered.subject,
    breadcrumbs: [
      [listPath(list.name), list.name],
      [monthPath(list.name, month), month],
      [threadPath(list.name, summary.messageId), 'thread'],
    ],
    body: html`${messageNav(links)}
<article class="message">
<h1>${rendered.subject}</h1>
${headerList(list, rendered, summary, links.parent)}
${rendered.body}
${attachmentList(list, summary, rendered)}
<p class="actions">${replyLink(list, summary, rendered)} · <a href="${threadPath(list.name, summary.messageId)}">whole thread</a> · <a href="${threadPath(list.name, summary.messageId)}/mbox" download>thread as mbox</a></p>
</article>
<section class="replies" aria-labelledby="replies-heading">
<h2 id="replies-heading">${links.replies.length === 0 ? 'No replies yet' : `Replies (${links.replies.length})`}</h2>
${links.replies.length === 0 ? '' : html`<ul class="messages">${links.replies.map((reply) => html`<li>${messageLine(reply)}</li>`)}</ul>`}
</section>
${messageNav(links)}`,
  });
}

function threadArticle(list: ListConfig, node: ThreadNode, rendered: RenderedMessage): Html {
  const { summary } = node;
  return html`<article class="message" id="m${summary.id}" data-depth="${node.depth}">
<header><h2><a href="${messagePath(list.name, summary.messageId)}">${rendered.subject}</a></h2>
<p class="meta">${rendered.from} · <time datetime="${(rendered.date ?? summary.receivedAt).toISOString()}">${formatDate(rendered.date ?? summary.receivedAt)}</time>${
    node.depth > node.shownDepth && node.parent ? html` · in reply to <a href="#m${node.parent.id}">${senderLabel(node.parent)}</a>` : ''
  }</p></header>
${rendered.body}
${attachmentList(list, summary, rendered)}
<p class="actions">${replyLink(list, summary, rendered)} · <a href="${messagePath(list.name, summary.messageId)}">permalink</a></p>`;
}

/**
 * Replies nest inside the message they answer, as a list (so a terminal browser indents them too), down to
 * maxShownDepth; deeper replies follow their parent at that depth, naming whom they answer.
 */
export function threadPage(list: ListConfig, nodes: Array<{ node: ThreadNode; rendered: RenderedMessage }>): string {
  const first = nodes[0]!;
  const parts: Html[] = [];
  // How many articles have their list of replies open; the innermost of them sits at depth open - 1.
  let open = 0;
  const closeInnermost = () => {
    open--;
    parts.push(trusted(`</ul></article>${open > 0 ? '</li>' : ''}`));
  };
  nodes.forEach(({ node, rendered }, index) => {
    while (open > node.shownDepth) closeInnermost();
    if (node.shownDepth > 0) parts.push(trusted('<li>'));
    parts.push(threadArticle(list, node, rendered));
    const next = nodes[index + 1]?.node;
    if (next && next.shownDepth > node.shownDepth) {
      parts.push(trusted('<ul class="replies">'));
      open++;
    } else {
      parts.push(trusted(`</article>${node.shownDepth > 0 ? '</li>' : ''}`));
    }
  });
  while (open > 0) closeInnermost();
  return page({
    title: first.rendered.subject,
    breadcrumbs: [
      [listPath(list.name), list.name],
      [threadPath(list.name, first.node.summary.messageId), 'thread'],
    ],
    body: html`<h1>${first.rendered.subject}</h1>
<p class="meta">${counted(nodes.length, 'message')} · <a href="${threadPath(list.name, first.node.summary.messageId)}/mbox" download>download thread as mbox</a></p>
<div class="thread">${parts}</div>`,
  });
}

/** A snippet as HTML: the text escaped and obfuscated, then only the match marks turned into <mark>. */
function snippetHtml(snippet: string): Html {
  const escaped = escapeHtml(obfuscateAddresses(snippet));
  const marked = escaped.replace(new RegExp(`${snippetStart}([^${snippetStart}${snippetEnd}]*)${snippetEnd}`, 'g'), '<mark>$1</mark>');
  return trusted(marked.replace(new RegExp(`[${snippetStart}${snippetEnd}]`, 'g'), ''));
}

function pageLinks(base: string, current: number, pages: number): Html | '' {
  if (pages <= 1) return '';
  const shown = [...new Set([1, ...Array.from({ length: 7 }, (_, index) => current - 3 + index), pages])].filter((number) => number >= 1 && number <= pages);
  return html`<nav class="pages" aria-label="result pages">${current > 1 ? html`<a rel="prev" href="${base}&page=${current - 1}">‹ newer</a> ` : ''}${shown.map(
    (number, index) =>
      html`${index > 0 && number - shown[index - 1]! > 1 ? '… ' : ''}${number === current ? html`<strong aria-current="page">${number}</strong> ` : html`<a href="${base}&page=${number}">${number}</a> `}`,
  )}${current < pages ? html`<a rel="next" href="${base}&page=${current + 1}">older ›</a>` : ''}</nav>`;
}

export function searchPage(list: ListConfig, query: string, result: { total: number; more: boolean; hits: SearchHit[] }, pageNumber: number, pageSize: number): string {
  const base = `/lists/${encodeURIComponent(list.name)}/search?q=${encodeURIComponent(query)}`;
  const pages = Math.ceil(result.total / pageSize);
  const first = (pageNumber - 1) * pageSize + 1;
  return page({
    title: `Search ${list.name}`,
    breadcrumbs: [[listPath(list.name), list.name]],
    body: html`<h1>Search ${list.name}</h1>
${searchForm(list.name, query)}
${
  query.trim() === ''
    ? ''
    : result.total === 0
      ? html`<p class="count">No messages match.</p>`
      : html`<p class="count">${result.more ? `More than ${result.total.toLocaleString('en')} messages match` : `${counted(result.total, 'message')} match${result.total === 1 ? 'es' : ''}`}${
          result.hits.length > 0 ? html`; ${first}–${first + result.hits.length - 1} shown, newest first` : html`; this page is past the last one`
        }.</p>
<ol class="messages results" start="${first}">${result.hits.map(
          (hit) => html`<li>${messageLine(hit.summary)}${hit.snippet ? html`<p class="snippet">${snippetHtml(hit.snippet)}</p>` : ''}</li>`,
        )}</ol>
${pageLinks(base, pageNumber, pages)}`
}`,
  });
}

export function notFoundPage(): string {
  return page({ title: 'Not found', body: html`<h1>Not found</h1><p>There is nothing public at this address.</p>` });
}
