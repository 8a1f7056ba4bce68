// HTML building blocks for the archive pages: escaping, the page frame, and the one stylesheet (no JavaScript anywhere).

export function escapeHtml(value: string | number): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** A tagged template that escapes every interpolated value unless it is already Html. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

type Part = Html | string | number | null | undefined | false | Array<Html | string>;

function renderPart(part: Part): string {
  if (part === null || part === undefined || part === false) return '';
  if (Array.isArray(part)) return part.map((item) => renderPart(item)).join('');
  if (part instanceof Html) return part.value;
  return escapeHtml(part);
}

export function html(strings: TemplateStringsArray, ...parts: Part[]): Html {
  let out = strings[0]!;
  parts.forEach((part, index) => {
    out += renderPart(part) + strings[index + 1]!;
  });
  return new Html(out);
}

/** Marks text that is already safe HTML (sanitizer output); use nowhere else. */
export function trusted(value: string): Html {
  return new Html(value);
}

export function page(options: { title: string; body: Html; breadcrumbs?: Array<[string, string]>; feed?: string }): string {
  const crumbs = options.breadcrumbs ?? [];
  return (
    '<!doctype html>\n' +
    html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${options.title}</title>
<link rel="stylesheet" href="/style.css">
${options.feed ? html`<link rel="alternate" type="application/atom+xml" title="Atom feed" href="${options.feed}">` : ''}
</head>
<body>
<header><nav aria-label="breadcrumbs"><a href="/">Archives</a>${crumbs.map(
      ([href, label]) => html` › <a href="${href}">${label}</a>`,
    )}</nav></header>
<main>
${options.body}
</main>
</body>
</html>
`.value
  );
}

/** Readable on a phone, no web fonts, no remote anything; type and spacing after HyperKitty and public-inbox. */
export const stylesheet = `
:root { color-scheme: light dark; --muted: #5f6368; --line: #d0d4d9; --accent: #1a5fb4; --quote: #4a6a3a; --soft: #f4f5f7; --mark: #fff1a8; }
@media (prefers-color-scheme: dark) { :root { --muted: #a8adb3; --line: #444; --accent: #8cb4ff; --quote: #9cc28a; --soft: #1e2124; --mark: #5c4f00; } }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; margin: 0 auto; max-width: 52rem; padding: 0.75rem; }
a { color: var(--accent); }
header nav { font-size: 0.9rem; color: var(--muted); margin-bottom: 1rem; overflow-wrap: anywhere; }
h1 { font-size: 1.4rem; line-height: 1.3; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; overflow-wrap: anywhere; }
.lead { font-size: 1.05rem; }
ul.messages, ul.threads, ul.lists, ul.months, ul.attachments, ol.results { list-style: none; padding: 0; }
ul.messages li, ul.lists li, ul.months li, ol.results li { padding: 0.4rem 0; border-bottom: 1px solid var(--line); }
ul.threads > li { padding: 0.5rem 0; border-bottom: 1px solid var(--line); }
ul.threads ul { list-style: none; padding-left: 1rem; margin: 0.25rem 0 0; font-size: 0.95rem; }
.meta, .count { color: var(--muted); font-size: 0.9rem; }
dl.headers { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 0.75rem; font-size: 0.95rem; }
dl.headers dt { font-weight: 600; }
dl.headers dd { margin: 0; overflow-wrap: anywhere; }
div.body { border-top: 1px solid var(--line); padding-top: 0.5rem; }
div.body pre, pre.info { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.9rem; margin: 0.4rem 0; }
div.body blockquote { margin: 0.4rem 0; padding-left: 0.6rem; border-left: 3px solid var(--quote); color: var(--quote); }
details.quote { margin: 0.4rem 0; }
details.quote summary { cursor: pointer; color: var(--muted); font-size: 0.9rem; }
pre.signature { color: var(--muted); opacity: 0.8; }
div.html-body { border-top: 1px solid var(--line); padding-top: 0.75rem; overflow-wrap: anywhere; }
div.html-body img { max-width: 100%; height: auto; }
div.html-body table { border-collapse: collapse; max-width: 100%; display: block; overflow-x: auto; }
article.message { margin-bottom: 1.5rem; }
article.message header h2 { margin: 0; font-size: 1.05rem; }
article.message header p { margin: 0.1rem 0 0.3rem; }
.thread ul.replies { list-style: none; margin: 0 0 0 0.5rem; padding-left: 0.6rem; border-left: 2px solid var(--line); }
@media (min-width: 40rem) { .thread ul.replies { margin-left: 1rem; padding-left: 1rem; } }
.thread ul.replies article.message { margin: 1rem 0 0; }
p.actions { font-size: 0.9rem; }
nav.steps { display: flex; flex-wrap: wrap; gap: 0.25rem 1.5rem; font-size: 0.9rem; padding: 0.4rem 0; border-bottom: 1px solid var(--line); }
nav.steps span.meta { opacity: 0.6; }
nav.pages { margin: 1rem 0; display: flex; flex-wrap: wrap; gap: 0.25rem 0.6rem; }
p.snippet { margin: 0.2rem 0 0; font-size: 0.9rem; overflow-wrap: anywhere; }
mark { background: var(--mark); color: inherit; padding: 0 0.1em; }
section.info { background: var(--soft); border: 1px solid var(--line); border-radius: 4px; padding: 0.25rem 1rem; margin: 1rem 0; overflow-wrap: anywhere; }
section.info h1, section.info h2, section.info h3 { font-size: 1.05rem; }
section.info pre { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.85rem; }
form.search, form.subscribe { display: flex; flex-wrap: wrap; gap: 0.5rem; margin: 1rem 0; align-items: center; }
form.search input[type=search], form.subscribe input[type=email] { flex: 1; min-width: 12rem; font-size: 1rem; padding: 0.4rem; }
form.search button, form.subscribe button { font-size: 1rem; padding: 0.4rem 0.8rem; }
p.notice { border-left: 4px solid var(--quote); padding-left: 0.75rem; }
p.problem { border-left: 4px solid #c01c28; padding-left: 0.75rem; }
code.fingerprint { overflow-wrap: anywhere; }
`;
