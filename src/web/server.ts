// The daemon's public HTTP listener: archive pages, list keys and WKD, health, the subscribe form's POST; never /metrics.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config, ListConfig } from '../config/types.ts';
import type { ListKey } from '../crypto/index.ts';
import type { Db } from '../store/database.ts';
import type { Logger } from '../util/log.ts';
import { counter, histogram } from '../util/metrics.ts';
import { errorMessage } from '../util/errors.ts';
import { mboxRecord } from '../archive/mbox.ts';
import {
  publicCount,
  publicMessage,
  publicMessagesByIds,
  publicMessagesInMonth,
  publicMonths,
  publicNeighbours,
  publicThread,
  recentPublicMessages,
  searchPublicPage,
  type ArchiveSummary,
} from '../archive/queries.ts';
import { headerBlock, replyTargets } from '../archive/store.ts';
import { simpleParser } from 'mailparser';
import { archivedAtUrl, listPath, messagePath, publicBaseUrl } from '../archive/urls.ts';
import { publishedOn } from '../advisories/store.ts';
import { atomFeed } from './atom.ts';
import { stylesheet } from './html.ts';
import { listInfo } from './list-info.ts';
import { obfuscateAddresses } from './obfuscate.ts';
import { indexPage, listPage, messagePage, monthPage, notFoundPage, searchPage, subscribeReplyPage, threadPage } from './pages.ts';
import { attachmentDisposition, downloadType, renderMessage } from './render-message.ts';
import { cookieValue, createSubscribeGuard, csrfCookie, formLifetimeMs } from './subscribe-form.ts';
import { threadTree, type ThreadNode } from './thread-tree.ts';
import { dearmor, wkdHash } from './wkd.ts';
import { closeNow, listenWithTimeouts } from './listen.ts';

const webSubscribeRequests = counter('embargo_web_subscribe_requests_total', 'Subscribe form posts that started a confirmation', ['list']);
const httpRequests = counter('embargo_http_requests_total', 'HTTP requests by route and status', ['route', 'status']);
const archiveSearchSeconds = histogram('embargo_archive_search_seconds', 'Full-text search time');
const httpRequestSeconds = histogram('embargo_http_request_seconds', 'HTTP request time');

export interface WebServerOptions {
  db: Db;
  config: () => Config;
  listKeys: (name: string) => ListKey | undefined;
  logger: Logger;
  /**
   * Starts the double opt-in for address on a public list, as a `subscribe` mail to NAME-request@ would. Without
   * it the list pages show no subscribe form and the form's POST is refused.
   */
  requestSubscription?: (list: ListConfig, address: string, clientIp: string) => void;
  /** The form guard's clock (tests drive it). */
  now?: () => number;
}

export interface WebServer {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The bound port (useful when configured as 0). */
  port(): number;
}

// No script, no remote anything; styles only from our own stylesheet.
const contentSecurityPolicy =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const searchPageSize = 20;
const maxSearchPage = 500;
// A form post is a mail address and a token; anything longer is not from our form.
const maxFormBytes = 4096;
// Addresses a person can read mail at: no quotes, comments or brackets, nothing that could split a header line.
const formAddress = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;
const feedSize = 30;

interface Reply {
  status: number;
  type: string;
  body: string | Buffer;
  headers?: Record<string, string>;
}

const text = (status: number, body: string): Reply => ({ status, type: 'text/plain; charset=utf-8', body });
const htmlReply = (body: string, status = 200): Reply => ({ status, type: 'text/html; charset=utf-8', body });
const notFound = (): Reply => htmlReply(notFoundPage(), 404);
const redirect = (location: string): Reply => ({ status: 301, type: 'text/plain; charset=utf-8', body: '', headers: { Location: location } });

function download(type: string, filename: string, body: Buffer | string): Reply {
  return { status: 200, type, body, headers: { 'Content-Disposition': attachmentDisposition(filename, 0) } };
}

export function createWebServer(options: WebServerOptions): WebServer {
  const { db, logger } = options;
  let server: Server | null = null;
  const guard = createSubscribeGuard(options.now);

  const publicList = (name: string): ListConfig | null => {
    const list = options.config().lists.get(name);
    return list && list.archive === 'public' ? list : null;
  };

  async function mbox(summaries: ArchiveSummary[]): Promise<Buffer> {
    const messages = publicMessagesByIds(db, summaries.map((summary) => summary.id));
    return Buffer.concat(
      messages.map((message, index) => mboxRecord(message, summaries[index]!.senderAddress, summaries[index]!.sentAt ?? summaries[index]!.receivedAt)),
    );
  }

  /** The reply tree of the thread holding messageId; only the header blocks are parsed. */
  async function threadOf(list: ListConfig, messageId: string): Promise<ThreadNode[]> {
    const summaries = publicThread(db, list.name, messageId);
    const messages = publicMessagesByIds(db, summaries.map((summary) => summary.id));
    const targets = await Promise.all(messages.map(async (message) => replyTargets(await simpleParser(headerBlock(message), { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true }))));
    return threadTree(summaries.map((summary, index) => ({ summary, replyTargets: targets[index] ?? [] })));
  }

  async function listRoute(list: ListConfig, rest: string[], url: URL): Promise<Reply> {
    const [first, second, third, fourth] = rest;
    if (rest.length === 0 || (rest.length === 1 && first === '')) {
      const form = options.requestSubscription ? guard.issue(list.name) : null;
      const reply = htmlReply(listPage(list, { months: publicMonths(db, list.name), info: listInfo(list), subscribeToken: form?.token ?? null }));
      if (!form) return reply;
      const secure = publicBaseUrl(options.config()).startsWith('https:') ? '; Secure' : '';
      return {
        ...reply,
        headers: {
          // The token in the page is good only with this cookie, which a cross-site post does not carry (SameSite).
          'Set-Cookie': `${csrfCookie}=${form.cookie}; Path=${listPath(list.name)}; Max-Age=${formLifetimeMs / 1000}; HttpOnly; SameSite=Strict${secure}`,
          'Cache-Control': 'private, no-store',
        },
      };
    }
    if (first === 'atom.xml' && rest.length === 1) return feed(list);
    // A released advisory's stable address follows its id and leads to its newest published revision.
    if (first === 'advisories' && second !== undefined && rest.length === 2) {
      const advisory = publishedOn(db, list.name, second);
      // 302, not 301: an update moves it to the newer revision.
      return advisory?.publishedMessageId
        ? { status: 302, type: 'text/plain; charset=utf-8', body: '', headers: { Location: messagePath(list.name, advisory.publishedMessageId) } }
        : notFound();
    }
    if (first === 'search' && rest.length === 1) {
      const query = (url.searchParams.get('q') ?? '').slice(0, 200);
      const pageNumber = Math.min(Math.max(1, Number.parseInt(url.searchParams.get('page') ?? '1', 10) || 1), maxSearchPage);
      const started = performance.now();
      const result = searchPublicPage(db, list.name, query, searchPageSize, (pageNumber - 1) * searchPageSize);
      archiveSearchSeconds.observe((performance.now() - started) / 1000);
      return htmlReply(searchPage(list, query, result, pageNumber, searchPageSize));
    }
    if (first && /^\d{4}-\d{2}$/.test(first)) {
      if (rest.length === 1) return redirect(`${listPath(list.name)}${first}/`);
      if (rest.length === 2 && second === '') {
        const messages = publicMessagesInMonth(db, list.name, first);
        return messages.length === 0 ? notFound() : htmlReply(monthPage(list, first, messages));
      }
      if (rest.length === 2 && second === 'mbox') {
        const messages = publicMessagesInMonth(db, list.name, first);
        if (messages.length === 0) return notFound();
        return download('application/mbox', `${list.name}-${first}.mbox`, await mbox(messages));
      }
      return notFound();
    }
    if (first === 'msg' && second !== undefined) {
      const found = publicMessage(db, list.name, second);
      if (!found) return notFound();
      if (rest.length === 2) {
        const rendered = await renderMessage(found.message);
        const tree = await threadOf(list, found.summary.messageId);
        const at = tree.findIndex((node) => node.summary.id === found.summary.id);
        const node = tree[at];
        const neighbours = publicNeighbours(db, found.summary);
        return htmlReply(
          messagePage(list, found.summary, rendered, {
            parent: node?.parent ?? null,
            replies: node?.replies ?? [],
            threadPrevious: tree[at - 1]?.summary ?? null,
            threadNext: tree[at + 1]?.summary ?? null,
            datePrevious: neighbours.previous,
            dateNext: neighbours.next,
          }),
        );
      }
      if (rest.length === 4 && third === 'attachment' && fourth !== undefined && /^\d{1,4}$/.test(fourth)) {
        const index = Number(fourth);
        const rendered = await renderMessage(found.message);
        const attachment = rendered.attachments[index];
        if (!attachment) return notFound();
        return {
          status: 200,
          type: downloadType(attachment.contentType),
          body: attachment.content,
          // A sandboxed CSP too, in case a browser renders it despite the disposition.
          headers: { 'Content-Disposition': attachmentDisposition(attachment.filename, index), 'Content-Security-Policy': `${contentSecurityPolicy}; sandbox` },
        };
      }
      return notFound();
    }
    if (first === 'thread' && second !== undefined) {
      const summaries = publicThread(db, list.name, second);
      if (summaries.length === 0) return notFound();
      if (rest.length === 2) {
        const messages = publicMessagesByIds(db, summaries.map((summary) => summary.id));
        const rendered = await Promise.all(messages.map((message) => renderMessage(message)));
        const renderedById = new Map(summaries.map((summary, index) => [summary.id, rendered[index]!]));
        const tree = threadTree(summaries.map((summary, index) => ({ summary, replyTargets: rendered[index]!.replyTargets })));
        return htmlReply(threadPage(list, tree.map((node) => ({ node, rendered: renderedById.get(node.summary.id)! }))));
      }
      if (rest.length === 3 && third === 'mbox') {
        return download('application/mbox', `${list.name}-thread-${summaries[0]!.id}.mbox`, await mbox(summaries));
      }
      return notFound();
    }
    return notFound();
  }

  async function feed(list: ListConfig): Promise<Reply> {
    const config = options.config();
    const base = publicBaseUrl(config);
    const recent = recentPublicMessages(db, list.name, feedSize);
    const messages = publicMessagesByIds(db, recent.map((summary) => summary.id));
    const entries = await Promise.all(
      recent.map(async (summary, index) => {
        const rendered = await renderMessage(messages[index]!);
        const url = archivedAtUrl(config, list.name, summary.messageId);
        return {
          id: url,
          url,
          title: obfuscateAddresses(summary.subject || '(no subject)'),
          author: obfuscateAddresses(summary.senderName || (summary.senderAddress.split('@')[0] ?? '')),
          updated: summary.receivedAt,
          // rendered.text is already obfuscated.
          summary: rendered.text.replace(/\s+/g, ' ').trim().slice(0, 500),
        };
      }),
    );
    return {
      status: 200,
      type: 'application/atom+xml; charset=utf-8',
      body: atomFeed({
        id: `${base}${listPath(list.name)}`,
        title: `${list.name} archive`,
        selfUrl: `${base}/lists/${encodeURIComponent(list.name)}/atom.xml`,
        pageUrl: `${base}${listPath(list.name)}`,
        updated: recent[0]?.receivedAt ?? new Date(0),
        entries,
      }),
    };
  }

  function clientIp(request: IncomingMessage): string {
    const direct = request.socket.remoteAddress ?? 'unknown';
    if (!options.config().server.http.trustProxy) return direct;
    // The proxy appends the address it saw; entries before it are whatever the client claimed.
    const forwarded = String(request.headers['x-forwarded-for'] ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
    return forwarded.at(-1) ?? direct;
  }

  /** A browser's own form post: no Origin or one of ours, and no Sec-Fetch-Site other than same-origin. */
  function sameOrigin(request: IncomingMessage): boolean {
    const site = request.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') return false;
    const origin = request.headers.origin;
    if (origin === undefined) return true;
    // Our pages send Referrer-Policy: no-referrer, so browsers send "Origin: null" on our own form; they also
    // send Sec-Fetch-Site, which that policy leaves alone, and it must say same-origin then.
    if (origin === 'null') return site === 'same-origin';
    try {
      return new URL(origin).host === request.headers.host || new URL(origin).origin === new URL(publicBaseUrl(options.config())).origin;
    } catch {
      return false;
    }
  }

  async function formBody(request: IncomingMessage): Promise<URLSearchParams | null> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxFormBytes) return null;
      chunks.push(chunk);
    }
    return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  }

  /**
   * The subscribe form's POST. It changes nothing itself: it starts the double opt-in (a confirmation mail), and
   * only a reply to that mail subscribes. The answer is the same whether or not the address is subscribed already,
   * so the form tells nobody who reads the list.
   */
  async function subscribe(request: IncomingMessage, url: URL): Promise<Reply> {
    const match = /^\/lists\/([^/]+)\/subscribe$/.exec(url.pathname);
    const list = match ? publicList(decodeURIComponent(match[1]!)) : null;
    if (!list || !options.requestSubscription) return notFound();
    const refuse = (status: number, message: string): Reply => htmlReply(subscribeReplyPage(list, { ok: false, message }), status);
    if (!sameOrigin(request)) return refuse(403, 'This form was sent from another site.');
    if (!/^application\/x-www-form-urlencoded\b/i.test(request.headers['content-type'] ?? '')) return refuse(400, 'Send the form from the list page.');
    const form = await formBody(request);
    if (!form) return refuse(413, 'The form is too large.');
    const check = guard.verify(list.name, form.get('token') ?? '', cookieValue(request.headers.cookie, csrfCookie));
    if (!check.ok) return refuse(check.status, check.reason);
    const address = (form.get('address') ?? '').trim();
    if (address.length > 254 || !formAddress.test(address)) return refuse(400, 'Give one mail address, like name@example.org.');
    const domain = options.config().server.domain.toLowerCase();
    if (address.toLowerCase().endsWith(`@${domain}`)) return refuse(400, `Addresses at ${domain} are this server's own.`);
    const allowed = guard.take(address, clientIp(request));
    if (!allowed.ok) return refuse(allowed.status, allowed.reason);
    options.requestSubscription(list, address, clientIp(request));
    webSubscribeRequests.inc({ list: list.name });
    return htmlReply(
      subscribeReplyPage(list, {
        ok: true,
        message: `If ${obfuscateAddresses(address)} can subscribe to ${list.name}, a confirmation request is on its way to it. Reply to that mail, keeping its subject, to be subscribed. Until then nothing changes.`,
      }),
    );
  }

  function wkd(segments: string[]): Reply {
    const config = options.config();
    // Direct method: /.well-known/openpgpkey/hu/H; advanced method: /.well-known/openpgpkey/DOMAIN/hu/H.
    let rest = segments;
    if (rest.length >= 2 && rest[0] !== 'hu' && rest[0] !== 'policy') {
      if (rest[0]!.toLowerCase() !== config.server.domain.toLowerCase()) return text(404, 'not found\n');
      rest = rest.slice(1);
    }
    if (rest.length === 1 && rest[0] === 'policy') return { ...text(200, ''), headers: { 'Access-Control-Allow-Origin': '*' } };
    if (rest.length !== 2 || rest[0] !== 'hu') return text(404, 'not found\n');
    const hash = rest[1]!;
    for (const list of config.lists.values()) {
      if (wkdHash(list.name) !== hash) continue;
      const key = options.listKeys(list.name);
      const binary = key ? dearmor(key.armoredPublicKey) : null;
      if (!binary) break;
      return { status: 200, type: 'application/octet-stream', body: binary, headers: { 'Access-Control-Allow-Origin': '*' } };
    }
    return text(404, 'not found\n');
  }

  async function route(request: IncomingMessage): Promise<{ name: string; reply: Reply }> {
    const url = new URL(request.url ?? '/', 'http://archive.invalid');
    let segments: string[];
    try {
      segments = url.pathname.split('/').slice(1).map((segment) => decodeURIComponent(segment));
    } catch {
      return { name: 'bad-request', reply: text(400, 'bad request\n') };
    }
    const [head, name, ...rest] = segments;
    if (url.pathname === '/') {
      const config = options.config();
      const lists = [...config.lists.values()].sort((a, b) => a.name.localeCompare(b.name));
      const publicLists = lists.filter((list) => list.archive === 'public').map((list) => ({ list, count: publicCount(db, list.name) }));
      // showPrivateLists: false names only public lists here; the others' keys stay at /keys/ and in WKD for those who know the address.
      const named = config.server.http.showPrivateLists ? lists : lists.filter((list) => list.archive === 'public');
      const keys = named.map((list) => ({ list, fingerprint: options.listKeys(list.name)?.fingerprint ?? null }));
      return { name: 'index', reply: htmlReply(indexPage(publicLists, keys)) };
    }
    if (url.pathname === '/style.css') return { name: 'style', reply: { status: 200, type: 'text/css; charset=utf-8', body: stylesheet, headers: { 'Cache-Control': 'public, max-age=3600' } } };
    if (url.pathname === '/healthz') {
      db.prepare('SELECT 1').get();
      return { name: 'healthz', reply: text(200, 'ok\n') };
    }
    if (head === 'keys' && name !== undefined && rest.length === 0 && name.endsWith('.asc')) {
      const key = options.listKeys(name.slice(0, -4));
      if (!key || !options.config().lists.has(name.slice(0, -4))) return { name: 'key', reply: text(404, 'no such list key\n') };
      return { name: 'key', reply: { status: 200, type: 'application/pgp-keys', body: key.armoredPublicKey, headers: { 'Access-Control-Allow-Origin': '*' } } };
    }
    if (head === '.well-known' && name === 'openpgpkey') return { name: 'wkd', reply: wkd(rest) };
    if (head === 'lists' && name !== undefined) {
      const list = publicList(name);
      if (!list) return { name: 'list', reply: notFound() };
      if (rest.length === 0) return { name: 'list', reply: redirect(listPath(list.name)) };
      const reply = await listRoute(list, rest, url);
      // Archive pages change (new posts, a message taken down): caches revalidate; downloads are not kept at all.
      const cacheControl = reply.headers?.['Content-Disposition'] ? 'no-store' : 'no-cache';
      return { name: 'list', reply: { ...reply, headers: { 'Cache-Control': cacheControl, ...reply.headers } } };
    }
    return { name: 'not-found', reply: notFound() };
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const started = performance.now();
    let name = 'error';
    let reply: Reply;
    if (request.method === 'POST' && /^\/lists\/[^/]+\/subscribe$/.test(new URL(request.url ?? '/', 'http://archive.invalid').pathname)) {
      name = 'subscribe';
      try {
        reply = await subscribe(request, new URL(request.url ?? '/', 'http://archive.invalid'));
      } catch (error) {
        logger.error({ err: errorMessage(error) }, 'subscribe form failed');
        reply = text(500, 'internal error\n');
      }
    } else if (request.method !== 'GET' && request.method !== 'HEAD') {
      reply = { ...text(405, 'method not allowed\n'), headers: { Allow: 'GET, HEAD' } };
      name = 'method';
    } else {
      try {
        ({ name, reply } = await route(request));
      } catch (error) {
        logger.error({ err: errorMessage(error), path: new URL(request.url ?? '/', 'http://archive.invalid').pathname }, 'web request failed');
        reply = text(500, 'internal error\n');
      }
    }
    const body = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body;
    response.writeHead(reply.status, {
      'Content-Type': reply.type,
      'Content-Length': String(body.length),
      'Content-Security-Policy': contentSecurityPolicy,
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      ...reply.headers,
    });
    response.end(request.method === 'HEAD' ? undefined : body);
    httpRequests.inc({ route: name, status: String(reply.status) });
    httpRequestSeconds.observe((performance.now() - started) / 1000);
  }

  return {
    async start() {
      const { host, port } = options.config().server.http;
      const created = createServer((request, response) => {
        void handle(request, response);
      });
      await listenWithTimeouts(created, port, host);
      server = created;
      logger.info({ host, port: (created.address() as AddressInfo).port }, 'http listening');
    },
    async stop() {
      const current = server;
      server = null;
      if (!current) return;
      await closeNow(current);
    },
    port() {
      const address = server?.address();
      return address && typeof address === 'object' ? address.port : 0;
    },
  };
}
