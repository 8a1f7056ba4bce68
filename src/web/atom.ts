// The Atom feed (RFC 4287) of a public list's newest messages: titles, authors' names and a short text summary.
import { escapeHtml } from './html.ts';

export interface FeedEntry {
  id: string;
  url: string;
  title: string;
  author: string;
  updated: Date;
  summary: string;
}

// XML 1.0 forbids most control characters; a hostile subject must not make the feed unparsable.
function xmlText(value: string): string {
  return escapeHtml(value.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, ''));
}

export function atomFeed(options: { id: string; title: string; selfUrl: string; pageUrl: string; updated: Date; entries: FeedEntry[] }): string {
  const entries = options.entries
    .map(
      (entry) => `  <entry>
    <id>${xmlText(entry.id)}</id>
    <title type="text">${xmlText(entry.title)}</title>
    <author><name>${xmlText(entry.author || 'unknown')}</name></author>
    <updated>${entry.updated.toISOString()}</updated>
    <link rel="alternate" type="text/html" href="${xmlText(entry.url)}"/>
    <summary type="text">${xmlText(entry.summary)}</summary>
  </entry>
`,
    )
    .join('');
  return `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>${xmlText(options.id)}</id>
  <title type="text">${xmlText(options.title)}</title>
  <updated>${options.updated.toISOString()}</updated>
  <link rel="self" type="application/atom+xml" href="${xmlText(options.selfUrl)}"/>
  <link rel="alternate" type="text/html" href="${xmlText(options.pageUrl)}"/>
${entries}</feed>
`;
}
