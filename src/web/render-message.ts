// Turns one archived message into safe HTML: text shown as text, HTML sanitized with nothing that loads or runs, addresses obfuscated.
import sanitizeHtml from 'sanitize-html';
import { simpleParser, type Attachment, type ParsedMail } from 'mailparser';
import { firstAddress, replyTargets } from '../archive/store.ts';
import { Html, html, trusted } from './html.ts';
import { obfuscateAddresses } from './obfuscate.ts';
import { renderTextBody } from './render-text.ts';

/** Attribute values a reader sees (tooltips, alt text) lose their addresses too. */
function withoutAddresses(attribs: sanitizeHtml.Attributes): sanitizeHtml.Attributes {
  const clean: sanitizeHtml.Attributes = {};
  for (const [name, value] of Object.entries(attribs)) clean[name] = name === 'href' || name === 'src' ? value : obfuscateAddresses(value);
  return clean;
}

const sanitizeOptions: sanitizeHtml.IOptions = {
  allowedTags: [
    'p', 'br', 'div', 'span', 'b', 'i', 'u', 's', 'em', 'strong', 'small', 'sub', 'sup', 'a', 'ul', 'ol', 'li',
    'blockquote', 'pre', 'code', 'kbd', 'samp', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'table', 'thead', 'tbody',
    'tfoot', 'tr', 'td', 'th', 'caption', 'hr', 'dl', 'dt', 'dd', 'img', 'abbr', 'cite', 'q', 'del', 'ins',
  ],
  // No style, class or id attributes: styles can load remote URLs and ids can clobber the page.
  allowedAttributes: { a: ['href', 'title', 'rel'], img: ['src', 'alt', 'title', 'width', 'height'], td: ['colspan', 'rowspan'], th: ['colspan', 'rowspan'], abbr: ['title'] },
  // No mailto: links: their addresses are what harvesters collect. The link text stays, obfuscated.
  allowedSchemes: ['http', 'https'],
  allowedSchemesByTag: { img: ['data'] },
  allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
  allowProtocolRelative: false,
  disallowedTagsMode: 'discard',
  nonTextTags: ['script', 'style', 'textarea', 'option', 'noscript', 'title', 'head', 'template', 'iframe', 'object', 'svg', 'math'],
  // Inline images are kept only as raster data: URLs; anything else would be a remote load or a tracking pixel.
  exclusiveFilter: (frame) => frame.tag === 'img' && !/^data:image\/(png|jpeg|gif|webp);base64,/i.test(frame.attribs.src ?? ''),
  transformTags: {
    a: (tagName, attribs) => ({ tagName, attribs: { ...withoutAddresses(attribs), rel: 'nofollow noopener noreferrer' } }),
    '*': (tagName, attribs) => ({ tagName, attribs: withoutAddresses(attribs) }),
  },
  // Gets text sanitize-html has already escaped; replacing '@' with ' at ' adds no markup.
  textFilter: (text) => obfuscateAddresses(text),
};

export function sanitizeMailHtml(dirty: string): string {
  return sanitizeHtml(dirty, sanitizeOptions);
}

/** HTML reduced to its text, for feeds. */
export function htmlToPlainText(dirty: string): string {
  return sanitizeHtml(dirty.replace(/<(br|\/p|\/div|\/li|\/tr|\/h\d)\b[^>]*>/gi, '$&\n'), { allowedTags: [], allowedAttributes: {}, nonTextTags: sanitizeOptions.nonTextTags })
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** A message as the public pages show it: every address in headers, subject and text obfuscated. */
export interface RenderedMessage {
  parsed: ParsedMail;
  from: string;
  to: string;
  cc: string;
  subject: string;
  date: Date | null;
  inReplyTo: string | null;
  /** The Message-IDs this one answers, nearest first (In-Reply-To, then References from the end). */
  replyTargets: string[];
  /** The body as safe HTML (text laid out by renderTextBody, or sanitized HTML). */
  body: Html;
  /** Plain text, for feeds and search snippets. */
  text: string;
  attachments: Attachment[];
}

function addressText(value: ParsedMail['to']): string {
  if (!value) return '';
  return obfuscateAddresses((Array.isArray(value) ? value : [value]).map((group) => group.text).join(', '));
}

export async function renderMessage(message: Buffer): Promise<RenderedMessage> {
  // skipHtmlToText: a text part, when present, is shown as text; HTML-only mail is sanitized instead.
  // Image links stay on so cid: images become data: URLs we may show; remote ones are dropped by the sanitizer.
  const parsed = await simpleParser(message, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
  const sender = firstAddress(parsed.from);
  let text = parsed.text ?? '';
  let body: Html;
  if (text.trim().length > 0 || !parsed.html) {
    body = renderTextBody(text);
  } else {
    body = html`<div class="html-body">${trusted(sanitizeMailHtml(parsed.html))}</div>`;
    text = htmlToPlainText(parsed.html);
  }
  const inReplyTo = parsed.inReplyTo ? (/<([^<>\s]+)>/.exec(parsed.inReplyTo)?.[1] ?? null) : null;
  return {
    parsed,
    from: obfuscateAddresses(sender.name ? `${sender.name} <${sender.address}>` : sender.address),
    to: addressText(parsed.to),
    cc: addressText(parsed.cc),
    subject: obfuscateAddresses(parsed.subject ?? '(no subject)'),
    date: parsed.headers.has('date') && parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date : null,
    inReplyTo,
    replyTargets: replyTargets(parsed),
    body,
    text: obfuscateAddresses(text),
    attachments: parsed.attachments,
  };
}

const safeDownloadTypes = new Set([
  'text/plain', 'text/x-diff', 'text/x-patch', 'application/pdf', 'image/png', 'image/jpeg', 'image/gif',
  'application/pgp-signature', 'application/pgp-keys', 'application/pgp-encrypted', 'application/zip',
  'application/gzip', 'application/x-gzip', 'application/x-xz', 'application/x-tar',
]);

/** The Content-Type an attachment is served with: a short allowlist, everything else as opaque bytes. */
export function downloadType(contentType: string): string {
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  if (base === 'text/x-diff' || base === 'text/x-patch') return 'text/plain; charset=utf-8';
  if (base.startsWith('text/')) return 'text/plain; charset=utf-8';
  return safeDownloadTypes.has(base) ? base : 'application/octet-stream';
}

/** A Content-Disposition that always downloads, with an ASCII fallback name and the UTF-8 original. */
export function attachmentDisposition(filename: string | undefined, index: number): string {
  const name = (filename ?? '').replace(/[\\/\x00-\x1f\x7f]/g, '_').trim() || `attachment-${index + 1}`;
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\;]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}
