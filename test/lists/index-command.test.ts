// End to end: a member finds old messages — a signed "index" to LIST-request@ lists the archive, "get" fetches one; withheld notices name the Message-ID missed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announce, bodyText, buildPost, decryptCopy, discussion, domain, headerOf, startListWorld } from '../helpers/lists.ts';
import type { ListWorld } from '../helpers/lists.ts';
import type { RelayMessage } from '../helpers/relay.ts';
import { makeMessage } from '../helpers/smtp.ts';

let world: ListWorld;
const sharing = `${discussion}@${domain}`;
const request = `${discussion}-request@${domain}`;

beforeAll(async () => {
  world = await startListWorld();
});

afterAll(async () => {
  await world?.stop();
});

async function exchange(envelope: string, to: string, raw: string | Buffer): Promise<RelayMessage[]> {
  const mark = world.relay.messages.length;
  const id = await world.send(envelope, [to], raw);
  expect(await world.waitForState(id, ['done', 'discarded', 'rejected', 'shunted'])).toBe('done');
  return world.settle(mark);
}

/** The base64 attachment called `name` in a decrypted reply, decoded. */
function attachment(plain: string, name: string): string {
  const match = new RegExp(`filename="${name}"\\r?\\n(?:[^\\r\\n]+\\r?\\n)*?\\r?\\n([A-Za-z0-9+/=\\r\\n]+)`).exec(plain);
  if (!match) throw new Error(`no attachment ${name} in the reply`);
  return Buffer.from(match[1].replace(/\s/g, ''), 'base64').toString('utf8');
}

describe('index and get', () => {
  it('a member\'s signed index lists the archive (date, Message-ID, subject, organisation), encrypted to them; get then returns a listed message', async () => {
    const posts = [];
    for (const [who, subject, body] of [
      [world.vendorB, 'Backport for 4.17', 'INDEXED-ONE'],
      [world.security, 'XSA-990 follow-up', 'INDEXED-TWO'],
    ] as const) {
      const post = await buildPost(world, { from: who, to: sharing, subject, body });
      await exchange(who.address, sharing, post.raw);
      posts.push({ ...post, who, subject });
    }

    const ask = await buildPost(world, { from: world.vendorA, to: request, subject: 'index', body: '', encryptTo: discussion });
    const replies = await exchange(world.vendorA.address, request, ask.raw);
    expect(replies).toHaveLength(1);
    expect(replies[0].raw.toString()).not.toContain(posts[0].messageId);
    const opened = await decryptCopy(world.vendorA, replies[0]);
    expect(opened.has('GOODSIG')).toBe(true);
    const index = attachment(opened.stdout.toString(), 'index.txt');
    for (const post of posts) {
      const line = index.split('\n').find((candidate) => candidate.includes(`<${post.messageId}>`));
      expect(line, index).toBeDefined();
      expect(line).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}Z  </);
      expect(line).toContain(post.subject);
      expect(line).toContain(post.who.name);
    }
    expect(index).not.toContain('INDEXED-ONE');

    // index SINCE: nothing archived after tomorrow.
    const later = await buildPost(world, { from: world.vendorA, to: request, subject: 'index', body: `index ${new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)}`, encryptTo: discussion });
    const none = await decryptCopy(world.vendorA, (await exchange(world.vendorA.address, request, later.raw))[0]);
    expect(none.stdout.toString()).toContain('holds no messages since');

    const get = await buildPost(world, { from: world.vendorA, to: request, subject: 'archive', body: `get <${posts[0].messageId}>`, encryptTo: discussion });
    const fetched = await exchange(world.vendorA.address, request, get.raw);
    const archived = attachment((await decryptCopy(world.vendorA, fetched[0])).stdout.toString(), 'archived.eml');
    expect(archived).toContain('INDEXED-ONE');
    expect(archived).toContain(`Message-ID: <${posts[0].messageId}>`);
  });

  it('an outsider\'s unsigned index gets the generic "needs a signed request" reply and no index', async () => {
    const replies = await exchange('x@outside.example', request, makeMessage({ from: 'x@outside.example', to: request, subject: 'index' }));
    expect(replies).toHaveLength(1);
    const text = bodyText(replies[0].raw);
    expect(text).toContain('This command needs a request signed with the OpenPGP key registered for your address');
    expect(replies[0].raw.toString()).not.toContain('index.txt');
    expect(text).not.toMatch(/Backport|XSA-990/);
  });
});

it('a withheld member\'s notice gives the Message-ID they missed, and how to fetch it', async () => {
  const post = await buildPost(world, { from: world.security, to: `${announce}@${domain}`, subject: 'XSA-991', body: 'withheld from vendor C' });
  const mark = world.relay.messages.length;
  const id = await world.send(world.security.address, [`${announce}@${domain}`], post.raw);
  expect(await world.waitForState(id, ['done', 'rejected'])).toBe('done');
  const messages = await world.settle(mark);
  const notice = messages.filter((message) => message.to.includes(world.expired.address));
  expect(notice).toHaveLength(1);
  const text = bodyText(notice[0].raw).replace(/=\r?\n/g, '');
  // The id the copies carried on the wire: the poster's own Message-ID never travels in clear.
  const wireId = `${id.toLowerCase()}.${announce}@${domain}`;
  expect(text).toContain(`Message-ID: <${wireId}>`);
  expect(notice[0].raw.toString()).not.toContain(post.messageId);
  expect(text).toContain('"get MESSAGE-ID"');
  expect(text).not.toContain('withheld from vendor C');
  // Once the member can read again, get takes that id.
  const request = `${announce}-request@${domain}`;
  const get = await buildPost(world, { from: world.security, to: request, subject: 'archive', body: `get <${wireId}>`, encryptTo: announce });
  const fetched = await exchange(world.security.address, request, get.raw);
  expect(attachment((await decryptCopy(world.security, fetched[0])).stdout.toString(), 'archived.eml')).toContain('withheld from vendor C');
});
