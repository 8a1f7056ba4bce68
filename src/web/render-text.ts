// Lays out a plain-text mail body as HTML: quotes set off (long ones folded), web links clickable, the signature dimmed.
import { LinkifyIt } from 'linkify-it';
import { Html, html } from './html.ts';
import { obfuscateAddresses } from './obfuscate.ts';

/** Quoted runs longer than this fold into a <details> a reader opens; shorter ones stay visible. */
export const foldQuotesOver = 4;

// Only links with a scheme, and only web ones: "example.org" in prose stays text, mailto: and the rest stay text.
// urlAuth: false leaves user@host URLs unlinked (they would put an address in the page).
const linkify = new LinkifyIt({ fuzzyLink: false, fuzzyEmail: false, fuzzyIP: false, urlAuth: false }).add('ftp:', null).add('mailto:', null).add('//', null);

/** One run of text with its web links as links (rel nofollow noopener) and every address obfuscated. */
export function linkedText(text: string): Html {
  const parts: Array<Html | string> = [];
  let at = 0;
  for (const match of linkify.match(text) ?? []) {
    // A URL with a user part (user@host) would put an address in the page: it stays obfuscated text.
    if (match.url.includes('@')) continue;
    parts.push(obfuscateAddresses(text.slice(at, match.index)));
    parts.push(html`<a href="${match.url}" rel="nofollow noopener noreferrer">${match.text}</a>`);
    at = match.lastIndex;
  }
  parts.push(obfuscateAddresses(text.slice(at)));
  return html`${parts}`;
}

const isQuoted = (line: string) => /^[ \t]*>/.test(line);

interface Run {
  quoted: boolean;
  lines: string[];
}

/** Consecutive lines grouped by whether they are quoted; a blank line inside a quote belongs to it. */
function runsOf(lines: string[]): Run[] {
  const runs: Run[] = [];
  lines.forEach((line, index) => {
    const last = runs.at(-1);
    const blankInQuote = line.trim() === '' && last?.quoted === true && index + 1 < lines.length && isQuoted(lines[index + 1]!);
    const quoted = isQuoted(line) || blankInQuote;
    if (last && last.quoted === quoted) last.lines.push(line);
    else runs.push({ quoted, lines: [line] });
  });
  return runs;
}

function quoteBlock(lines: string[]): Html {
  const block = html`<blockquote><pre>${linkedText(lines.join('\n'))}</pre></blockquote>`;
  if (lines.length <= foldQuotesOver) return html`<div class="quote">${block}</div>`;
  return html`<details class="quote"><summary>${lines.length} quoted lines</summary>${block}</details>`;
}

/**
 * The body as HTML. Each part is a <pre>, so a terminal browser shows the text as written (quote marks included);
 * the signature is what follows the last "-- " line (RFC 3676 4.3).
 */
export function renderTextBody(text: string): Html {
  const lines = text.replace(/\r\n?/g, '\n').replace(/\n+$/, '').split('\n');
  const separator = lines.lastIndexOf('-- ');
  const content = separator === -1 ? lines : lines.slice(0, separator);
  const signature = separator === -1 ? [] : lines.slice(separator);
  return html`<div class="body">${runsOf(content).map((run) =>
    run.quoted ? quoteBlock(run.lines) : html`<pre>${linkedText(run.lines.join('\n'))}</pre>`,
  )}${signature.length > 0 ? html`<pre class="signature">${linkedText(signature.join('\n'))}</pre>` : ''}</div>`;
}
