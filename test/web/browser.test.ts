// The public archive in headless Chromium: browse, follow a thread, search, download an mbox, and hostile mail that does nothing.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMbox } from '../../src/archive/mbox.ts';
import { createWebServer, type WebServer } from '../../src/web/server.ts';
import { applicationsList, buildMail, makeArchiveFixture, type ArchiveFixture } from '../helpers/archive.ts';
import { launchBrowser, type TestBrowser } from '../helpers/browser.ts';

let fixture: ArchiveFixture;
let web: WebServer;
let base: string;
let browser: TestBrowser;
// A server that hostile mail tries to reach; any hit on it is a failure.
let trap: Server;
let trapBase: string;
const trapHits: string[] = [];

const scriptTitles = ['pwned', 'pwned-onload', 'pwned-onerror', 'pwned-link', 'pwned-focus', 'pwned-text', 'pwned-subject'];
const march = (day: number) => new Date(`2026-03-${String(day).padStart(2, '0')}T10:00:00Z`);

const hostileHtml = (trapUrl: string) => `<html><head>
<base href="${trapUrl}/base/">
<meta http-equiv="refresh" content="0;url=${trapUrl}/refresh">
<link rel="stylesheet" href="${trapUrl}/link.css">
<style>body { background: url(${trapUrl}/style-bg) } @import url(${trapUrl}/import.css);</style>
<script>document.title = 'pwned'; fetch('${trapUrl}/script');</script>
</head><body background="${trapUrl}/body-bg" onload="document.title='pwned-onload'">
<p>Visible hostile paragraph: grabthiswordplease</p>
<img src="${trapUrl}/pixel.gif" width="1" height="1">
<img src="x" onerror="document.title='pwned-onerror'; fetch('${trapUrl}/onerror')">
<div style="background-image: url('${trapUrl}/inline-style')">styled</div>
<iframe src="${trapUrl}/iframe"></iframe>
<object data="${trapUrl}/object"></object>
<embed src="${trapUrl}/embed">
<video poster="${trapUrl}/poster" src="${trapUrl}/video"></video>
<svg onload="fetch('${trapUrl}/svg')"><image href="${trapUrl}/svg-image"/></svg>
<a href="javascript:document.title='pwned-link'">a javascript link</a>
<form action="${trapUrl}/form"><input autofocus onfocus="document.title='pwned-focus'"></form>
<table background="${trapUrl}/table-bg"><tr><td>cell</td></tr></table>
</body></html>`;

beforeAll(async () => {
  trap = createServer((request, response) => {
    trapHits.push(request.url ?? '');
    response.end('');
  });
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
  trapBase = `http://127.0.0.1:${(trap.address() as AddressInfo).port}`;

  fixture = await makeArchiveFixture();
  await fixture.archive(applicationsList, await buildMail({ subject: 'Application: Example Hosting', messageId: 'app1@hosting.example', text: 'We run 4000 Xen hosts.', date: march(2) }), { receivedAt: march(2) });
  await fixture.archive(
    applicationsList,
    await buildMail({ from: 'Reviewer <review@xenproject.example>', subject: 'Re: Application: Example Hosting', messageId: 'app1-r1@xenproject.example', inReplyTo: 'app1@hosting.example', references: ['app1@hosting.example'], text: 'Which public URL lists your service?', date: march(3) }),
    { receivedAt: march(3) },
  );
  await fixture.archive(
    applicationsList,
    await buildMail({ subject: 'Re: Application: Example Hosting', messageId: 'app1-r2@hosting.example', inReplyTo: 'app1-r1@xenproject.example', references: ['app1@hosting.example', 'app1-r1@xenproject.example'], text: 'See our quasarwidget status page.\nFrom the team\n>From quoted', date: march(4) }),
    { receivedAt: march(4) },
  );
  await fixture.archive(applicationsList, await buildMail({ subject: 'Unrelated question', messageId: 'other@else.example', text: 'Is there a FAQ?', date: march(5) }), { receivedAt: march(5) });
  await fixture.archive(
    applicationsList,
    await buildMail({ subject: 'HTML only <b>bold</b> "quoted"', messageId: 'hostile-html@evil.example', html: hostileHtml(trapBase), date: march(6) }),
    { receivedAt: march(6) },
  );
  await fixture.archive(
    applicationsList,
    await buildMail({
      subject: '<script>document.title="pwned-subject"</script>',
      messageId: 'hostile-text@evil.example',
      text: `<script>document.title="pwned-text"; fetch("${trapBase}/text-script")</script> plain words`,
      html: hostileHtml(trapBase),
      date: march(7),
    }),
    { receivedAt: march(7) },
  );

  web = createWebServer({ db: fixture.db, config: () => fixture.config, listKeys: fixture.listKeys, logger: fixture.logger });
  await web.start();
  base = `http://127.0.0.1:${web.port()}`;
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await web?.stop();
  fixture?.cleanup();
  await new Promise<void>((resolve) => (trap ? trap.close(() => resolve()) : resolve()));
});

describe('public archive in a browser', () => {
  it('opens the index, follows the list, the month and a thread (no script anywhere, phone viewport)', async () => {
    const { page, requests } = await browser.newPage();
    await page.goto(`${base}/`);
    expect(await page.locator('meta[name=viewport]').count()).toBe(1);
    await page.getByRole('link', { name: applicationsList }).click();
    await expect.poll(() => page.url()).toBe(`${base}/lists/${applicationsList}/`);
    await page.getByRole('link', { name: '2026-03' }).click();
    await page.getByRole('link', { name: 'Application: Example Hosting', exact: true }).first().click();
    expect(page.url()).toBe(`${base}/lists/${applicationsList}/thread/${encodeURIComponent('app1@hosting.example')}`);
    const articles = page.locator('article.message');
    expect(await articles.count()).toBe(3);
    expect(await articles.nth(2).innerText()).toContain('quasarwidget');
    expect(await page.locator('script').count()).toBe(0);
    // The page fits a phone screen: nothing wider than the viewport.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(requests.every((request) => request.url().startsWith(base))).toBe(true);
    await page.close();
  });

  it('searches for a word and opens the result', async () => {
    const { page } = await browser.newPage();
    await page.goto(`${base}/lists/${applicationsList}/`);
    await page.getByRole('searchbox').fill('quasarwidget');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.url()).toContain('/search?q=quasarwidget');
    const results = page.locator('ol.results li');
    expect(await results.count()).toBe(1);
    await results.locator('a').first().click();
    expect(page.url()).toBe(`${base}/lists/${applicationsList}/msg/${encodeURIComponent('app1-r2@hosting.example')}`);
    expect(await page.locator('div.body').innerText()).toContain('See our quasarwidget status page.');
    await page.close();
  });

  it('downloads the month as mbox, which parses back into the same messages', async () => {
    const { page } = await browser.newPage();
    await page.goto(`${base}/lists/${applicationsList}/2026-03/`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'download mbox' }).click()]);
    expect(download.suggestedFilename()).toBe(`${applicationsList}-2026-03.mbox`);
    const mbox = readFileSync((await download.path())!);
    const parsed = await Promise.all(parseMbox(mbox).map((message) => simpleParser(message)));
    const stored = fixture.db
      .prepare("SELECT message FROM archive_entries WHERE list = ? AND month = '2026-03' ORDER BY received_at")
      .all(applicationsList) as Array<{ message: Buffer }>;
    const original = await Promise.all(stored.map((row) => simpleParser(row.message)));
    expect(parsed.map((mail) => mail.messageId)).toEqual(original.map((mail) => mail.messageId));
    expect(parsed.map((mail) => mail.subject)).toEqual(original.map((mail) => mail.subject));
    expect(parsed.map((mail) => mail.text)).toEqual(original.map((mail) => mail.text));
    expect(parsed.map((mail) => mail.html)).toEqual(original.map((mail) => mail.html));
    expect(parsed).toHaveLength(6);
    // The thread download holds just the thread.
    await page.goto(`${base}/lists/${applicationsList}/thread/${encodeURIComponent('app1-r1@xenproject.example')}`);
    const [threadDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'download thread as mbox' }).click()]);
    const thread = await Promise.all(parseMbox(readFileSync((await threadDownload.path())!)).map((message) => simpleParser(message)));
    expect(thread.map((mail) => mail.messageId)).toEqual(['<app1@hosting.example>', '<app1-r1@xenproject.example>', '<app1-r2@hosting.example>']);
    expect(thread[2]!.text).toContain('\nFrom the team\n>From quoted');
    await page.close();
  });

  it('shows hostile HTML mail sanitized or as text: nothing runs and nothing remote loads', async () => {
    for (const messageId of ['hostile-html@evil.example', 'hostile-text@evil.example']) {
      for (const path of [`/lists/${applicationsList}/msg/${encodeURIComponent(messageId)}`, `/lists/${applicationsList}/thread/${encodeURIComponent(messageId)}`]) {
        const { page, requests } = await browser.newPage();
        await page.goto(base + path);
        await page.waitForLoadState('load');
        const javascriptLink = page.locator('a', { hasText: 'a javascript link' });
        if ((await javascriptLink.count()) > 0) await javascriptLink.first().click();
        await page.waitForTimeout(300);
        // The title is the subject, shown as text; a script would have replaced it with one of these.
        expect(scriptTitles, path).not.toContain(await page.title());
        expect(await page.locator('main script, main iframe, main object, main embed, main video, main svg, main form, main style, main link').count(), path).toBe(0);
        expect(await page.locator('main [style], main [onerror], main [onload], main [background]').count(), path).toBe(0);
        const remoteRequests = requests.map((request) => request.url()).filter((url) => !url.startsWith(base));
        expect(remoteRequests, path).toEqual([]);
        await page.close();
      }
    }
    // The text part is shown as text, markup and all; the HTML-only message shows its sanitized words.
    const { page } = await browser.newPage();
    await page.goto(`${base}/lists/${applicationsList}/msg/${encodeURIComponent('hostile-text@evil.example')}`);
    expect(await page.locator('div.body').innerText()).toContain('<script>document.title="pwned-text"');
    expect(await page.locator('h1').innerText()).toBe('<script>document.title="pwned-subject"</script>');
    await page.goto(`${base}/lists/${applicationsList}/msg/${encodeURIComponent('hostile-html@evil.example')}`);
    expect(await page.locator('div.html-body').innerText()).toContain('Visible hostile paragraph: grabthiswordplease');
    expect(await page.locator('div.html-body img').count()).toBe(0);
    await page.goto(`${base}/lists/${applicationsList}/2026-03/`);
    expect(await page.title()).toBe('predisclosure-applications 2026-03');
    await page.close();
    expect(trapHits).toEqual([]);
  });
});
