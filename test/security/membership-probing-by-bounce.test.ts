// Invariant 3 (threat: probing who is on a private list): a refusal tells the sender what to do, in words that do not depend on membership.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { announce, bodyText, buildPost, discussion, domain, headerOf, startListWorld } from '../helpers/lists.ts';
import type { ListWorld, PostOptions } from '../helpers/lists.ts';

let world: ListWorld;

beforeAll(async () => {
  world = await startListWorld();
});

afterAll(async () => {
  await world?.stop();
});

/** The bounce body the envelope sender gets, with the per-message reference taken out. */
async function bounceText(list: string, options: Omit<PostOptions, 'to'>, envelope: string): Promise<string> {
  const mark = world.relay.messages.length;
  const to = `${list}@${domain}`;
  const post = await buildPost(world, { ...options, to });
  const id = await world.send(envelope, [to], post.raw);
  expect(await world.waitForState(id, ['done', 'rejected', 'held', 'discarded', 'shunted'])).toBe('rejected');
  const messages = await world.settle(mark);
  const bounces = messages.filter((message) => message.to.includes(envelope) && headerOf(message.raw, 'Auto-Submitted') === 'auto-replied');
  expect(bounces).toHaveLength(1);
  expect(headerOf(bounces[0].raw, 'Subject')).toBe(`Your message to ${list} was not distributed`);
  return bodyText(bounces[0].raw).replace(/Reference: \S+/, 'Reference: X');
}

it('gives members and non-members the same refusal, naming no member', async () => {
  const probe = 'probe@attacker.example';
  const texts = {
    // announce list: a member without the poster role, and a stranger.
    memberNotPoster: await bounceText(announce, { from: world.vendorA, subject: 'a', body: 'a' }, world.vendorA.address),
    stranger: await bounceText(announce, { from: world.outsider, subject: 'b', body: 'b' }, world.outsider.address),
    // a member's address in From, unsigned, sent by a prober; and a made-up address, unsigned.
    memberAddressUnsigned: await bounceText(announce, { from: probe, fromHeader: world.vendorB.address, subject: 'c', body: 'c', signer: null }, probe),
    unknownAddressUnsigned: await bounceText(announce, { from: probe, fromHeader: 'nobody@vendor-x.example', subject: 'd', body: 'd', signer: null }, probe),
    // a member's address signed by the prober's own key, and a stranger's address signed the same way.
    memberAddressWrongKey: await bounceText(announce, { from: world.outsider, fromHeader: world.vendorB.address, subject: 'e', body: 'e' }, probe),
    unknownAddressWrongKey: await bounceText(announce, { from: world.outsider, fromHeader: 'nobody@vendor-x.example', subject: 'f', body: 'f' }, probe),
  };
  // The words depend on the fault (unsigned, or signed by a key not allowed to post), never on who is a member.
  expect(texts.memberNotPoster).toBe(texts.stranger);
  expect(texts.memberAddressUnsigned).toBe(texts.unknownAddressUnsigned);
  expect(texts.memberAddressWrongKey).toBe(texts.unknownAddressWrongKey);
  expect(texts.memberAddressWrongKey).toBe(texts.stranger);
  for (const text of Object.values(texts)) {
    for (const member of [world.security, world.vendorA, world.vendorB, world.expired]) expect(text).not.toContain(member.address);
    expect(text).toMatch(/signed/);
  }

  // The discussion list answers a member and a stranger alike too.
  const discussionMember = await bounceText(discussion, { from: world.vendorA, subject: 'g', body: 'g', signer: null }, world.vendorA.address);
  const discussionStranger = await bounceText(discussion, { from: world.outsider, subject: 'h', body: 'h', signer: null }, world.outsider.address);
  expect(discussionMember).toBe(discussionStranger);
  // A member's key under another member's From, and a stranger's own key: both "not a key allowed to post here".
  const discussionWrongMember = await bounceText(discussion, { from: world.vendorA, fromHeader: world.vendorB.address, subject: 'i', body: 'i' }, world.vendorA.address);
  const discussionStrangerKey = await bounceText(discussion, { from: world.outsider, subject: 'j', body: 'j' }, world.outsider.address);
  expect(discussionWrongMember).toBe(discussionStrangerKey);
});

it('the daily limit on automatic replies answers a member address and a stranger address alike', async () => {
  // Refused posts to the discussion list, unsigned, from a member's address and from an unknown one: the bounces
  // stop after the same number for both (notices.autoRepliesPerAddressPerDay, 10 by default), so the limit is no
  // oracle for membership either. Fresh envelope addresses: the test above used its own.
  const limit = world.daemon.daemon!.config().server.notices.autoRepliesPerAddressPerDay;
  const bouncesTo = async (address: string): Promise<number> => {
    const to = `${discussion}@${domain}`;
    let count = 0;
    for (let round = 0; round <= limit; round++) {
      const mark = world.relay.messages.length;
      const post = await buildPost(world, { from: address, to, subject: `probe ${round}`, body: `probe ${round}`, signer: null });
      const id = await world.send(address, [to], post.raw);
      expect(await world.waitForState(id, ['done', 'rejected', 'held', 'discarded', 'shunted'])).toBe('rejected');
      count += (await world.settle(mark)).filter((message) => message.to.includes(address)).length;
    }
    return count;
  };
  const member = await bouncesTo(world.vendorB.address);
  const stranger = await bouncesTo('someone@vendor-y.example');
  expect(member).toBe(limit);
  expect(stranger).toBe(member);
}, 120_000);
