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
  const distinct = new Set(Object.values(texts));
  expect(distinct.size).toBe(1);
  const text = [...distinct][0];
  for (const member of [world.security, world.vendorA, world.vendorB, world.expired]) expect(text).not.toContain(member.address);
  expect(text).toContain(`${announce}-sendkey@${domain}`);
  expect(text).toMatch(/signed/);
  expect(text).toMatch(/encrypted/);

  // The discussion list answers a member and a stranger alike too.
  const discussionMember = await bounceText(discussion, { from: world.vendorA, subject: 'g', body: 'g', signer: null }, world.vendorA.address);
  const discussionStranger = await bounceText(discussion, { from: world.outsider, subject: 'h', body: 'h' }, world.outsider.address);
  expect(discussionMember).toBe(discussionStranger);
});
