// Renders a list's `info` text from its YAML for the list page: Markdown (raw HTML off, then sanitized) or plain text.
import MarkdownIt from 'markdown-it';
import type { ListConfig } from '../config/types.ts';
import { Html, html, trusted } from './html.ts';
import { sanitizeMailHtml } from './render-message.ts';
import { linkedText } from './render-text.ts';

// html: false writes any HTML in the text as text; linkify makes bare web addresses links. The sanitizer after it
// is the same one mail goes through (no scripts, styles, remote images; links get rel=nofollow noopener; addresses
// obfuscated), so a list file cannot put anything on the page that a post could not.
const markdown = new MarkdownIt({ html: false, linkify: true, typographer: false });

// Rendering is pure; a config reload brings a new ListConfig object, and with it a new entry.
const rendered = new WeakMap<ListConfig, Html | null>();

export function listInfo(list: ListConfig): Html | null {
  if (rendered.has(list)) return rendered.get(list)!;
  let info: Html | null = null;
  if (list.info && list.info.trim() !== '') {
    info = list.infoFormat === 'text' ? html`<pre class="info">${linkedText(list.info.trimEnd())}</pre>` : trusted(sanitizeMailHtml(markdown.render(list.info)));
  }
  rendered.set(list, info);
  return info;
}
