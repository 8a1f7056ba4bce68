// End to end: subscribing to a public list with the archive's web form (double opt-in by mail), and forged or flooding posts that change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type TestBrowser } from '../helpers/browser.ts';
import { domain, headerOf, publicList, startListWorld, type ListWorld } from '../helpers/lists.ts';
import type { RelayMessage } from '../helpers/relay.ts';
import { makeMessage } from '../helpers/smtp.ts';

let world: ListWorld;
let browser: TestBrowser;
let base: string;
const listAddress = `${publicList}@${domain}`;
const requestAddress = `${publicList}-request@${domain}`;
const reader = 'web-reader@subscriber.example';
const victim = 'victim@forged.example';

beforeAll(async () => {
  world = await startListWorld();
  base = `http://127.0.0.1:${world.daemon.httpPort}`;
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await world?.stop();
});

const db = () => world.daemon.daemon!.db;
const subscribed = (address: string) => db().prepare('SELECT COUNT(*) AS count FROM subscribers WHERE list = ? AND address = ?').get(publicList, address) as { count: number };
const spoolRows = () => (db().prepare('SELECT COUNT(*) AS count FROM spool').get() as { count: number }).count;
const tokensFor = (address: string) => (db().prepare('SELECT COUNT(*) AS count FROM subscription_tokens WHERE address = ?').get(address) as { count: number }).count;
const toOf = (messages: RelayMessage[], address: string) => messages.filter((message) => message.to.includes(address));

/** What a browser gets from the list page: the form's token and the cookie that goes with it. */
async function freshForm(): Promise<{ token: string; cookie: string }> {
  const response = await fetch(`${base}/lists/${publicList}/`);
  const page = await response.text();
  const token = /name="token" value="([^"]+)"/.exec(page)?.[1];
  const cookie = response.headers.get('set-cookie')?.split(';')[0];
  if (!token || !cookie) throw new Error('the list page has no subscribe form');
  return { token, cookie };
}

function post(fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/lists/${publicList}/subscribe`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
}

describe('web subscribe form', () => {
  it('starts the double opt-in: the confirmation goes by mail, the reply subscribes, the next post reaches the new subscriber', async () => {
    let mark = world.relay.messages.length;
    const { page } = await browser.newPage();
    await page.goto(`${base}/lists/${publicList}/`);
    await page.getByLabel('Your mail address').fill(reader);
    await page.getByRole('button', { name: 'Subscribe' }).click();
    await page.waitForURL(`${base}/lists/${publicList}/subscribe`);
    expect(await page.locator('h1').innerText(), await page.locator('main').innerText()).toBe('Check your mail');
    expect(await page.locator('main').innerText()).toContain('web-reader at subscriber.example');
    expect(await page.content()).not.toContain(reader);
    await page.close();

    // The confirmation arrives at the relay, from the -request address, exactly as for a mailed "subscribe".
    let messages = await world.settle(mark);
    const confirmation = toOf(messages, reader).find((message) => /^confirm [0-9a-f]+$/.test(headerOf(message.raw, 'Subject') ?? ''));
    expect(confirmation).toBeDefined();
    expect(headerOf(confirmation!.raw, 'Reply-To')).toBe(requestAddress);
    expect(subscribed(reader)).toEqual({ count: 0 });

    mark = world.relay.messages.length;
    const token = headerOf(confirmation!.raw, 'Subject')!.split(' ')[1];
    const confirmId = await world.send(reader, [requestAddress], makeMessage({ from: reader, to: requestAddress, subject: `Re: confirm ${token}`, body: '> Someone (hopefully you) asked to subscribe\r\n' }));
    expect(await world.waitForState(confirmId, ['done'])).toBe('done');
    await world.settle(mark);
    expect(subscribed(reader)).toEqual({ count: 1 });

    mark = world.relay.messages.length;
    const applicant = 'applicant@hosting.example';
    const postId = await world.send(applicant, [listAddress], makeMessage({ from: applicant, to: listAddress, subject: 'Application: Web Reader Hosting', body: 'We run Xen.\r\n', messageId: '<web-subscribe-post@hosting.example>' }));
    expect(await world.waitForState(postId, ['done'])).toBe('done');
    messages = await world.settle(mark);
    const copies = toOf(messages, reader).filter((message) => headerOf(message.raw, 'Message-ID') === '<web-subscribe-post@hosting.example>');
    expect(copies).toHaveLength(1);
  });

  it('refuses forged posts (no token, a token without its cookie, another site) and changes nothing', async () => {
    const mark = world.relay.messages.length;
    const rowsBefore = spoolRows();
    const form = await freshForm();
    const forged: Array<[string, Promise<Response>]> = [
      ['no token', post({ address: victim })],
      ['made-up token', post({ address: victim, token: `${Date.now()}.abc.def` }, { Cookie: form.cookie })],
      ['token without its cookie', post({ address: victim, token: form.token })],
      ['token with another cookie', post({ address: victim, token: form.token }, { Cookie: 'embargo_form=someone-else' })],
      ['another site (Origin)', post({ address: victim, token: form.token }, { Cookie: form.cookie, Origin: 'https://evil.example' })],
      ['Origin null from a sandboxed page or redirect, no Sec-Fetch-Site', post({ address: victim, token: form.token }, { Cookie: form.cookie, Origin: 'null' })],
      ['another site (Sec-Fetch-Site)', post({ address: victim, token: form.token }, { Cookie: form.cookie, 'Sec-Fetch-Site': 'cross-site' })],
      ['no form encoding', fetch(`${base}/lists/${publicList}/subscribe`, { method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: form.cookie }, body: JSON.stringify({ address: victim, token: form.token }) })],
    ];
    for (const [what, pending] of forged) {
      const response = await pending;
      expect([400, 403], what).toContain(response.status);
      expect(await response.text(), what).toContain('Nothing was changed');
    }
    // A bad address with a good form is refused too, and so is one of the server's own addresses.
    for (const address of ['not an address', `${victim}\r\nBcc: other@forged.example`, requestAddress]) {
      const response = await post({ address, token: form.token }, { Cookie: form.cookie });
      expect(response.status, address).toBe(400);
    }
    expect(spoolRows()).toBe(rowsBefore);
    expect(tokensFor(victim)).toBe(0);
    expect(subscribed(victim)).toEqual({ count: 0 });
    expect(toOf(await world.settle(mark), victim)).toEqual([]);
  });

  it('limits confirmation requests per address and per client IP', async () => {
    const limited = 'limited@subscriber.example';
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const form = await freshForm();
      statuses.push((await post({ address: limited, token: form.token }, { Cookie: form.cookie })).status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    // This IP has now made 4 counted requests (the browser's and three above); six more are allowed, then none.
    const others: number[] = [];
    for (let attempt = 0; attempt < 7; attempt++) {
      const form = await freshForm();
      others.push((await post({ address: `reader-${attempt}@subscriber.example`, token: form.token }, { Cookie: form.cookie })).status);
    }
    expect(others).toEqual([200, 200, 200, 200, 200, 200, 429]);
    const refused = await freshForm();
    const response = await post({ address: 'one-more@subscriber.example', token: refused.token }, { Cookie: refused.cookie });
    expect(response.status).toBe(429);
    expect(await response.text()).toContain('Too many requests from your network');
    await world.settle();
  });
});
