// End to end: the security team's advisory on the announce list, a member with an expired key, and every way of being refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announce, bodyText, buildPost, copiesOfPost, decryptCopy, domain, headerOf, serverAdmin, startListWorld } from '../helpers/lists.ts';
import type { ListWorld, Person, PostOptions } from '../helpers/lists.ts';
import type { RelayMessage } from '../helpers/relay.ts';

let world: ListWorld;
const listAddress = `${announce}@${domain}`;

beforeAll(async () => {
  world = await startListWorld();
});

afterAll(async () => {
  await world?.stop();
});

const toOf = (messages: RelayMessage[], address: string) => messages.filter((message) => message.to.includes(address));

describe('announce list', () => {
  let advisory: { messageId: string; raw: string };
  let advisoryId: string;
  let messages: RelayMessage[];

  beforeAll(async () => {
    const mark = world.relay.messages.length;
    const post = await buildPost(world, {
      from: world.security,
      to: listAddress,
      subject: 'XSA-999: embargoed issue in the hypervisor',
      body: 'The embargo ends on 2026-12-01. Patch attached in spirit.',
    });
    advisory = post;
    const id = await world.send(world.security.address, [listAddress], post.raw);
    advisoryId = id;
    expect(await world.waitForState(id, ['done', 'rejected', 'held', 'shunted', 'discarded'])).toBe('done');
    messages = await world.settle(mark);
  });

  it('delivers the signed and encrypted advisory to every member, each copy for that member only, signed by the list', async () => {
    const copies = copiesOfPost(messages, advisoryId);
    expect(copies.flatMap((message) => message.to).sort()).toEqual([world.security.address, world.vendorA.address, world.vendorB.address].sort());
    for (const copy of copies) {
      const text = copy.raw.toString();
      expect(text).not.toContain('embargoed issue in the hypervisor');
      expect(text).not.toContain('Patch attached in spirit');
      expect(headerOf(copy.raw, 'List-Id')).toContain(`<${announce}.${domain}>`);
      expect(headerOf(copy.raw, 'List-Post')).toBe('NO');
      expect(headerOf(copy.raw, 'List-Help')).toBe(`<mailto:${announce}-request@${domain}?subject=help>`);
      expect(headerOf(copy.raw, 'List-Archive')).toBeUndefined();
      expect(headerOf(copy.raw, 'Precedence')).toBe('list');
      expect(headerOf(copy.raw, 'From')).toContain(`<${listAddress}>`);
      expect(copy.from).toMatch(new RegExp(`^${announce}-bounces\\+`));
    }
    const members = [world.security, world.vendorA, world.vendorB];
    for (const member of members) {
      const copy = copies.find((message) => message.to.includes(member.address))!;
      const result = await decryptCopy(member, copy);
      expect(result.has('DECRYPTION_OKAY')).toBe(true);
      expect(result.has('GOODSIG')).toBe(true);
      expect(result.args('VALIDSIG')?.at(-1)).toBe(world.listKeys[announce].fingerprint);
      const plain = result.stdout.toString();
      expect(plain).toContain('Patch attached in spirit');
      expect(plain).toContain('XSA-999: embargoed issue in the hypervisor');
      // The verification note names the original signer and their key.
      expect(plain).toContain(world.security.address);
      expect(plain).toContain(world.security.fingerprint);
      for (const other of members.filter((candidate) => candidate !== member)) {
        expect((await decryptCopy(other, copy)).has('DECRYPTION_OKAY')).toBe(false);
      }
    }
  });

  it('sends a member with an expired key a signed notice instead of the advisory, and tells the admins who and why', async () => {
    const toExpired = toOf(messages, world.expired.address);
    expect(toExpired).toHaveLength(1);
    const notice = toExpired[0].raw.toString();
    expect(copiesOfPost(toExpired, advisoryId)).toHaveLength(0);
    expect(notice).not.toContain('Patch attached in spirit');
    expect(notice).not.toContain('XSA-999');
    expect(notice).toContain('multipart/signed');
    expect(bodyText(notice)).toContain('withheld');
    expect(bodyText(notice)).toMatch(/expired/);
    // The server admin has no key: the notice comes signed in clear, naming the member and the reason.
    const adminNotices = toOf(messages, serverAdmin);
    expect(adminNotices).toHaveLength(1);
    const adminText = bodyText(adminNotices[0].raw);
    expect(adminText).toContain(world.expired.address);
    expect(adminText).toMatch(/expired/);
    // The list admin with a key gets it encrypted.
    const securityNotice = toOf(messages, world.security.address).find((message) => copiesOfPost([message], advisoryId).length === 0)!;
    const opened = await decryptCopy(world.security, securityNotice);
    expect(opened.stdout.toString()).toContain(world.expired.address);
  });

  it('drops a byte-identical retransmission quietly: no copies, no bounce', async () => {
    const mark = world.relay.messages.length;
    const id = await world.send(world.security.address, [listAddress], advisory.raw);
    expect(await world.waitForState(id, ['done', 'rejected', 'discarded'])).toBe('discarded');
    expect(await world.settle(mark)).toHaveLength(0);
  });

  it('refuses the same signed advisory sent again (replay)', async () => {
    // Same Message-ID: the earlier post's bytes re-sent by whoever captured them.
    const mark = world.relay.messages.length;
    const post = await buildPost(world, { from: world.security, to: listAddress, subject: 'again', body: 'again', messageId: advisory.messageId });
    const id = await world.send(world.security.address, [listAddress], post.raw);
    expect(await world.waitForState(id, ['done', 'rejected'])).toBe('rejected');
    const after = await world.settle(mark);
    expect(toOf(after, world.vendorA.address)).toHaveLength(0);
  });
});

describe('announce list refusals', () => {
  const cases: Array<{ name: string; sender: () => Person | string; post: () => PostOptions }> = [
    { name: 'a member who is not a poster', sender: () => world.vendorA, post: () => ({ from: world.vendorA, to: listAddress, subject: 'from a member', body: 'member text' }) },
    { name: 'a non-member', sender: () => world.outsider, post: () => ({ from: world.outsider, to: listAddress, subject: 'from outside', body: 'outsider text' }) },
    { name: 'an unsigned post', sender: () => world.security, post: () => ({ from: world.security, to: listAddress, subject: 'unsigned', body: 'unsigned text', signer: null }) },
    {
      name: 'a post signed by an unregistered key',
      sender: () => world.security,
      // The outsider's key, with the poster's address in From.
      post: () => ({ from: world.outsider, fromHeader: world.security.address, to: listAddress, subject: 'forged', body: 'forged text' }),
    },
    {
      name: "a post whose From is one member and whose signing key is another's",
      sender: () => world.security,
      post: () => ({ from: world.vendorA, fromHeader: world.security.address, to: listAddress, subject: 'impersonation', body: 'impersonation text' }),
    },
  ];

  for (const testCase of cases) {
    it(`refuses ${testCase.name} with a bounce that says what to do, and no member receives anything`, async () => {
      const mark = world.relay.messages.length;
      const options = testCase.post();
      const post = await buildPost(world, options);
      const sender = testCase.sender();
      const envelope = typeof sender === 'string' ? sender : sender.address;
      const id = await world.send(envelope, [listAddress], post.raw);
      expect(await world.waitForState(id, ['done', 'rejected', 'held', 'shunted', 'discarded'])).toBe('rejected');
      const after = await world.settle(mark);
      expect(copiesOfPost(after, id)).toHaveLength(0);
      for (const member of [world.vendorA, world.vendorB, world.expired]) {
        if (member.address === envelope) continue;
        expect(toOf(after, member.address)).toHaveLength(0);
      }
      const bounces = toOf(after, envelope).filter((message) => headerOf(message.raw, 'Auto-Submitted') === 'auto-replied');
      expect(bounces).toHaveLength(1);
      expect(headerOf(bounces[0].raw, 'From')).toContain(`${announce}-owner@${domain}`);
      expect(headerOf(bounces[0].raw, 'In-Reply-To')).toBe(`<${post.messageId}>`);
      const text = bodyText(bounces[0].raw);
      expect(text).toContain('signed');
      for (const member of [world.security, world.vendorA, world.vendorB]) expect(text).not.toContain(member.address);
      // The admins are told, with the original attached.
      const adminNotice = toOf(after, serverAdmin);
      expect(adminNotice).toHaveLength(1);
      expect(bodyText(adminNotice[0].raw)).toContain(id);
    });
  }
});
