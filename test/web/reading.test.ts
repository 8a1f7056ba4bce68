// Reading the public archive in headless Chromium: nested threads, previous/next, folded quotes, links, search snippets and pages, no raw addresses.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.ts';
import { createWebServer, type WebServer } from '../../src/web/server.ts';
import { applicationsList, buildMail, makeArchiveFixture, privateList, type ArchiveFixture } from '../helpers/archive.ts';
import { launchBrowser, type TestBrowser } from '../helpers/browser.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { fixtureConfig } from '../helpers/config-dir.ts';
import { repoRoot } from '../helpers/daemon.ts';

let fixture: ArchiveFixture;
let web: WebServer;
let base: string;
let browser: TestBrowser;

const april = (day: number, hour = 10) => new Date(`2026-04-${String(day).padStart(2, '0')}T${String(hour).padStart(2, '0')}:00:00Z`);
const list = `/lists/${applicationsList}`;
const msg = (id: string) => `${list}/msg/${encodeURIComponent(id)}`;

const alice = 'Alice Applicant <alice@applicant.example>';
const reviewer = 'Rita Reviewer <rita@xenproject.example>';
const bob = 'Bob Bystander <bob@bystander.example>';
// Every address a page could leak: senders, recipients, addresses written in bodies, and the list's member.
const rawAddresses = ['alice@applicant.example', 'rita@xenproject.example', 'bob@bystander.example', 'cc-person@copied.example', 'psirt@quoted.example', 'security@xenproject.example'];

const longQuote = Array.from({ length: 8 }, (_, index) => `> line ${index + 1} of what Alice wrote`).join('\n');

beforeAll(async () => {
  fixture = await makeArchiveFixture();
  const archive = async (mail: Parameters<typeof buildMail>[0], at: Date) => fixture.archive(applicationsList, await buildMail({ ...mail, date: at }), { receivedAt: at });
  // The thread, three levels deep with a second branch:
  //   root (Alice) ─┬─ r1 (Rita) ── r1a (Alice)
  //                 └─ r2 (Bob)
  await archive({ from: alice, subject: 'Application: Example Hosting', messageId: 'root@applicant.example', text: 'We run 4000 Xen hosts.\nEvidence: https://hosting.example/xen?plan=big&x=1\nWrite to psirt@quoted.example for details.\n\n-- \nAlice Applicant\nExample Hosting security team', headers: { Cc: 'cc-person@copied.example' } }, april(1));
  await archive({ from: reviewer, subject: 'Re: Application: Example Hosting', messageId: 'r1@xenproject.example', inReplyTo: 'root@applicant.example', references: ['root@applicant.example'], text: `Alice wrote:\n${longQuote}\n\nWhich public page lists the quasarwidget service?\n> short quote stays open\nThanks.` }, april(2));
  await archive({ from: bob, subject: 'Re: Application: Example Hosting', messageId: 'r2@bystander.example', inReplyTo: 'root@applicant.example', references: ['root@applicant.example'], text: 'I can vouch for them; contact me at bob@bystander.example.' }, april(3));
  await archive({ from: alice, subject: 'Re: Application: Example Hosting', messageId: 'r1a@applicant.example', inReplyTo: 'r1@xenproject.example', references: ['root@applicant.example', 'r1@xenproject.example'], text: '> Which public page lists the quasarwidget service?\nThe status page does.' }, april(4));
  // Enough matches of one word for two result pages (20 a page).
  for (let index = 1; index <= 23; index++) {
    await archive({ from: bob, subject: `Zebrafish note ${index}`, messageId: `zebra-${index}@bystander.example`, text: `Filler words before the term. The zebrafish count is ${index}. More filler words after it.` }, april(10, index % 24));
  }
  // HTML-only mail with addresses in a mailto: link, its text and a tooltip.
  await archive({ from: bob, subject: 'HTML note', messageId: 'html-note@bystander.example', html: '<p>Mail <a href="mailto:psirt@quoted.example" title="ask rita@xenproject.example">psirt@quoted.example</a> or <b>cc-person@copied.example</b>.</p>' }, new Date('2026-06-20T10:00:00Z'));
  // A back-and-forth nine messages deep, in May.
  for (let depth = 0; depth < 9; depth++) {
    const at = new Date(Date.UTC(2026, 4, 1 + depth));
    await archive({ from: depth % 2 ? reviewer : alice, subject: 'Deep thread', messageId: `deep-${depth}@applicant.example`, inReplyTo: depth ? `deep-${depth - 1}@applicant.example` : undefined, references: Array.from({ length: depth }, (_, index) => `deep-${index}@applicant.example`), text: `Level ${depth}.` }, at);
  }
  web = createWebServer({ db: fixture.db, config: () => fixture.config, listKeys: fixture.listKeys, logger: fixture.logger });
  await web.start();
  base = `http://127.0.0.1:${web.port()}`;
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await web?.stop();
  fixture?.cleanup();
});

/** EMBARGO_SCREENSHOTS=docs/images saves the pages the docs show (a desktop-width window, whole page). */
async function screenshot(page: Page, name: string): Promise<void> {
  const directory = process.env.EMBARGO_SCREENSHOTS;
  if (!directory) return;
  mkdirSync(join(repoRoot, directory), { recursive: true });
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.screenshot({ path: join(repoRoot, directory, `${name}.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
}

describe('reading the public archive', () => {
  it('renders a 3-level thread nested, each reply inside the message it answers, and fits a phone', async () => {
    const { page, requests } = await browser.newPage();
    await page.goto(`${base}${list}/thread/${encodeURIComponent('r1a@applicant.example')}`);
    const article = (id: number) => page.locator(`article#m${id}`);
    const ids = await page.locator('article.message').evaluateAll((nodes) => nodes.map((node) => Number(node.id.slice(1))));
    expect(ids).toHaveLength(4);
    const [root, r1, r1a, r2] = ids as [number, number, number, number];
    // Document order is the reading order: depth first, older replies first.
    const header = (id: number) => page.locator(`article#m${id} > header`);
    expect(await header(root).locator('h2').innerText()).toBe('Application: Example Hosting');
    expect(await header(r1).locator('.meta').innerText()).toContain('Rita Reviewer');
    expect(await header(r1a).locator('.meta').innerText()).toContain('Alice Applicant');
    expect(await header(r2).locator('.meta').innerText()).toContain('Bob Bystander');
    // Nesting in the DOM: r1a inside r1 inside root; r2 inside root but not inside r1.
    expect(await article(root).locator(`article#m${r1} article#m${r1a}`).count()).toBe(1);
    expect(await article(r1).locator(`article#m${r2}`).count()).toBe(0);
    expect(await article(root).locator(`ul.replies > li > article#m${r2}`).count()).toBe(1);
    expect(await article(r1a).evaluate((node) => node.getAttribute('data-depth'))).toBe('2');
    // Indented: each level starts further right, and nothing is wider than the phone.
    const left = async (id: number) => (await article(id).boundingBox())!.x;
    expect(await left(r1)).toBeGreaterThan(await left(root));
    expect(await left(r1a)).toBeGreaterThan(await left(r1));
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(await page.locator('script').count()).toBe(0);
    expect(requests.every((request) => request.url().startsWith(base))).toBe(true);
    await screenshot(page, 'archive-thread');
    await page.close();
  });

  it('caps the nesting of a deep thread at five levels, deeper replies naming whom they answer', async () => {
    const { page } = await browser.newPage();
    await page.goto(`${base}${list}/thread/${encodeURIComponent('deep-0@applicant.example')}`);
    const articles = page.locator('article.message');
    expect(await articles.count()).toBe(9);
    const nesting = await articles.evaluateAll((nodes) => nodes.map((node) => {
      let depth = 0;
      for (let parent = node.parentElement; parent; parent = parent.parentElement) if (parent.tagName === 'ARTICLE') depth++;
      return depth;
    }));
    expect(nesting).toEqual([0, 1, 2, 3, 4, 5, 5, 5, 5]);
    expect(await articles.nth(6).locator('header .meta').innerText()).toContain('in reply to Rita Reviewer');
    expect(await articles.nth(5).locator('header .meta').innerText()).not.toContain('in reply to');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.close();
  });

  it('walks the thread with next and back with previous, and lists each message’s replies', async () => {
    const { page } = await browser.newPage();
    await page.goto(`${base}${msg('root@applicant.example')}`);
    const expected = ['root@applicant.example', 'r1@xenproject.example', 'r1a@applicant.example', 'r2@bystander.example'].map((id) => `${base}${msg(id)}`);
    const visited = [page.url()];
    const threadStep = (label: string) => page.locator('nav.steps').first().getByRole('link', { name: label, exact: true });
    while ((await threadStep('next ›').count()) > 0) {
      await threadStep('next ›').click();
      visited.push(page.url());
      expect(visited.length).toBeLessThanOrEqual(4);
    }
    expect(visited).toEqual(expected);
    const back = [page.url()];
    while ((await threadStep('‹ previous').count()) > 0) {
      await threadStep('‹ previous').click();
      back.push(page.url());
      expect(back.length).toBeLessThanOrEqual(4);
    }
    expect(back).toEqual([...expected].reverse());
    // The root lists its two replies; r1 links up to the root.
    const replies = page.locator('section.replies li a');
    expect(await replies.allInnerTexts()).toEqual(['Re: Application: Example Hosting', 'Re: Application: Example Hosting']);
    expect(await replies.evaluateAll((links) => links.map((link) => link.getAttribute('href')))).toEqual([msg('r1@xenproject.example'), msg('r2@bystander.example')]);
    await page.goto(`${base}${msg('r1@xenproject.example')}`);
    expect(await page.locator('dl.headers').getByRole('link', { name: 'Application: Example Hosting' }).getAttribute('href')).toBe(msg('root@applicant.example'));
    // By date: r1 (2 April) sits between the root (1 April) and r2 (3 April).
    await page.locator('nav.steps').first().getByRole('link', { name: 'newer ›' }).click();
    expect(page.url()).toBe(`${base}${msg('r2@bystander.example')}`);
    await page.locator('nav.steps').first().getByRole('link', { name: '‹ older' }).click();
    await page.locator('nav.steps').first().getByRole('link', { name: '‹ older' }).click();
    expect(page.url()).toBe(`${base}${msg('root@applicant.example')}`);
    expect(await page.locator('nav.steps').first().getByRole('link', { name: '‹ older' }).count()).toBe(0);
    await page.close();
  });

  it('folds a long quote in <details>, keeps a short one open, links URLs with rel=nofollow noopener, dims the signature', async () => {
    const { page } = await browser.newPage();
    await page.goto(`${base}${msg('r1@xenproject.example')}`);
    const folded = page.locator('div.body details.quote');
    expect(await folded.count()).toBe(1);
    expect(await folded.locator('summary').innerText()).toBe('8 quoted lines');
    expect(await folded.evaluate((node) => (node as HTMLDetailsElement).open)).toBe(false);
    expect(await folded.locator('blockquote').isVisible()).toBe(false);
    await folded.locator('summary').click();
    expect(await folded.locator('blockquote').isVisible()).toBe(true);
    expect(await folded.locator('blockquote').innerText()).toContain('> line 8 of what Alice wrote');
    const open = page.locator('div.body div.quote blockquote');
    expect(await open.innerText()).toBe('> short quote stays open');
    expect(await open.isVisible()).toBe(true);
    // The reply link answers in thread.
    const reply = new URL((await page.locator('p.actions a.reply').getAttribute('href'))!);
    expect(reply.protocol).toBe('mailto:');
    expect(reply.pathname).toBe(`${applicationsList}@lists.example.org`);
    expect(reply.searchParams.get('In-Reply-To')).toBe('<r1@xenproject.example>');
    expect(reply.searchParams.get('subject')).toBe('Re: Application: Example Hosting');
    await screenshot(page, 'archive-message');

    await page.goto(`${base}${msg('root@applicant.example')}`);
    const link = page.locator('div.body a', { hasText: 'https://hosting.example/xen' });
    expect(await link.getAttribute('href')).toBe('https://hosting.example/xen?plan=big&x=1');
    expect(await link.getAttribute('rel')).toContain('nofollow');
    expect(await link.getAttribute('rel')).toContain('noopener');
    const signature = page.locator('div.body pre.signature');
    expect(await signature.innerText()).toBe('-- \nAlice Applicant\nExample Hosting security team');
    const style = (locator: typeof signature) => locator.evaluate((node) => getComputedStyle(node).color);
    expect(await style(signature)).not.toBe(await style(page.locator('div.body > pre').first()));
    await page.close();
  });

  it('shows search results with a highlighted snippet, the hit count and pages of results', async () => {
    const { page } = await browser.newPage();
    await page.goto(`${base}${list}/`);
    await page.getByRole('searchbox').fill('zebrafish');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.url()).toContain('/search?q=zebrafish');
    expect(await page.locator('p.count').innerText()).toBe('23 messages match; 1–20 shown, newest first.');
    const results = page.locator('ol.results > li');
    expect(await results.count()).toBe(20);
    const firstSnippet = results.first().locator('p.snippet');
    expect(await firstSnippet.locator('mark').allInnerTexts()).toEqual(['zebrafish']);
    expect(await firstSnippet.innerText()).toMatch(/The zebrafish count is \d+\./);
    await page.locator('nav.pages').getByRole('link', { name: '2', exact: true }).click();
    expect(await page.locator('p.count').innerText()).toBe('23 messages match; 21–23 shown, newest first.');
    expect(await results.count()).toBe(3);
    expect(await page.locator('nav.pages strong').innerText()).toBe('2');
    await page.locator('nav.pages').getByRole('link', { name: '‹ newer' }).click();
    expect(await results.count()).toBe(20);
    // A word in one message: one result, no page links, no empty paragraph.
    await page.goto(`${base}${list}/search?q=quasarwidget`);
    expect(await page.locator('p.count').innerText()).toBe('2 messages match; 1–2 shown, newest first.');
    expect(await page.locator('nav.pages').count()).toBe(0);
    expect(await page.locator('main p:empty').count()).toBe(0);
    await page.close();
  });

  it('shows no raw member or sender address on any page or feed; the mbox keeps them', async () => {
    const { page } = await browser.newPage();
    await page.goto(`${base}${msg('root@applicant.example')}`);
    // Readers can still tell who wrote: the obfuscated form is there.
    expect(await page.locator('dl.headers').innerText()).toContain('alice at applicant.example');
    expect(await page.locator('dl.headers').innerText()).toContain('cc-person at copied.example');
    expect(await page.locator('div.body').innerText()).toContain('psirt at quoted.example');
    await page.goto(`${base}${msg('html-note@bystander.example')}`);
    expect(await page.locator('div.html-body').innerText()).toBe('Mail psirt at quoted.example or cc-person at copied.example.');
    expect(await page.locator('div.html-body a').getAttribute('href')).toBeNull();
    await page.close();

    const paths = [
      '/',
      `${list}/`,
      `${list}/2026-04/`,
      `${list}/thread/${encodeURIComponent('root@applicant.example')}`,
      ...['root@applicant.example', 'r1@xenproject.example', 'r2@bystander.example', 'r1a@applicant.example', 'zebra-1@bystander.example', 'html-note@bystander.example'].map(msg),
      `${list}/2026-06/`,
      `${list}/search?q=bystander`,
      `${list}/search?q=alice`,
      `${list}/search?q=zebrafish&page=2`,
      `${list}/atom.xml`,
    ];
    for (const path of paths) {
      const response = await fetch(base + path);
      expect(response.status, path).toBe(200);
      const body = await response.text();
      for (const address of rawAddresses) expect(body, `${path} shows ${address}`).not.toContain(address);
    }
    const mbox = await (await fetch(`${base}${list}/2026-04/mbox`)).text();
    for (const address of rawAddresses.slice(0, 5)) expect(mbox).toContain(address);
  });

  it('shows the list info text (shipped application template) rendered safely, and a subscribe form only when the daemon can take one', async () => {
    // The running test config has no info; the applications list gets the demo template (the fixture's copy of config/).
    const shipped = await loadConfig(fixtureConfig);
    if (!shipped.ok) throw new Error('the fixture config does not load');
    const shippedInfo = shipped.config.lists.get(applicationsList)?.info;
    expect(shippedInfo).toContain('Who is eligible');
    fixture.config.lists.set(applicationsList, { ...fixture.config.lists.get(applicationsList)!, info: shippedInfo, infoFormat: 'markdown' });
    const { page } = await browser.newPage();
    await page.goto(`${base}${list}/`);
    const info = page.locator('section.info');
    expect(await info.getByRole('heading', { name: 'Who is eligible' }).count()).toBe(1);
    expect(await info.locator('pre code').innerText()).toContain('Public evidence:');
    expect(await info.locator('ol > li').count()).toBe(3);
    // No web server hook for subscriptions here: no form.
    expect(await page.locator('form.subscribe').count()).toBe(0);
    await screenshot(page, 'archive-list');
    await page.close();

    // Markdown from a list file gets no more than a post would: raw HTML is text, javascript: links are dropped.
    const hostile = structuredClone(fixture.config);
    const applications = hostile.lists.get(applicationsList)!;
    hostile.lists.set(applicationsList, {
      ...applications,
      info: 'Hello <script>document.title="pwned"</script> [click](javascript:alert(1)) <img src=x onerror=alert(1)> and https://xenproject.example/policy',
    });
    const plain = structuredClone(fixture.config);
    plain.lists.set(applicationsList, { ...applications, info: 'Line one\n  indented *not emphasis*\nsee https://xenproject.example/', infoFormat: 'text' });
    for (const [config, check] of [
      [hostile, async (p: Page) => {
        expect(await p.title()).not.toBe('pwned');
        expect(await p.locator('section.info script, section.info img').count()).toBe(0);
        expect(await p.locator('section.info').innerText()).toContain('<script>');
        expect(await p.locator('section.info a[href^="javascript"]').count()).toBe(0);
        expect(await p.locator('section.info').innerText()).toContain('[click](javascript:alert(1))');
        expect(await p.locator('section.info a', { hasText: 'xenproject.example/policy' }).getAttribute('rel')).toContain('nofollow');
      }],
      [plain, async (p: Page) => {
        expect(await p.locator('section.info pre.info').innerText()).toBe('Line one\n  indented *not emphasis*\nsee https://xenproject.example/');
        expect(await p.locator('section.info em').count()).toBe(0);
      }],
    ] as Array<[Config, (p: Page) => Promise<void>]>) {
      const other = createWebServer({ db: fixture.db, config: () => config, listKeys: fixture.listKeys, logger: fixture.logger });
      await other.start();
      const { page: otherPage } = await browser.newPage();
      await otherPage.goto(`http://127.0.0.1:${other.port()}${list}/`);
      await check(otherPage);
      await otherPage.close();
      await other.stop();
    }
  });

  it('names private lists on the index unless http.showPrivateLists is false; their keys stay at /keys/', async () => {
    const { page } = await browser.newPage();
    await page.goto(`${base}/`);
    expect(await page.locator('main').innerText()).toContain(privateList);
    await screenshot(page, 'archive-index');
    await page.close();

    const hidden = structuredClone(fixture.config);
    hidden.server.http.showPrivateLists = false;
    const other = createWebServer({ db: fixture.db, config: () => hidden, listKeys: fixture.listKeys, logger: fixture.logger });
    await other.start();
    const otherBase = `http://127.0.0.1:${other.port()}`;
    const index = await (await fetch(`${otherBase}/`)).text();
    expect(index).toContain(applicationsList);
    expect(index).not.toContain(privateList);
    expect(index).not.toContain(fixture.listKey(privateList).fingerprint);
    const key = await fetch(`${otherBase}/keys/${privateList}.asc`);
    expect(key.status).toBe(200);
    expect(await key.text()).toContain('BEGIN PGP PUBLIC KEY BLOCK');
    await other.stop();
  });
});
