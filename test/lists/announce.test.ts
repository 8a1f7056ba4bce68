// End to end: the security team's advisory on the announce list, and every way of being refused there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announce, buildPost, decryptCopy, domain, headerOf, startListWorld } from '../helpers/lists.ts';
import type { ListWorld } from '../helpers/lists.ts';

let world: ListWorld;

beforeAll(async () => {
  world = await startListWorld();
});

afterAll(async () => {
  await world?.stop();
});

describe('announce list', () => {
  it('delivers the signed and encrypted advisory to every member, each copy for that member only, signed by the list', async () => {
    const mark = world.relay.messages.length;
    const post = await buildPost(world, {
      from: world.security,
      to: `${announce}@${domain}`,
      subject: 'XSA-999: embargoed issue in the hypervisor',
      body: 'The embargo ends on 2026-12-01. Patch attached in spirit.',
    });
    const id = await world.send(world.security.address, [`${announce}@${domain}`], post.raw);
    expect(await world.waitForState(id, ['done', 'rejected', 'held', 'shunted', 'discarded'])).toBe('done');
    const messages = await world.settle(mark);
    const copies = messages.filter((message) => headerOf(message.raw, 'Message-ID') === `<${post.messageId}>`);
    const recipients = copies.flatMap((message) => message.to).sort();
    expect(recipients).toEqual([world.security.address, world.vendorA.address, world.vendorB.address].sort());
    for (const copy of copies) {
      expect(copy.raw.toString()).not.toContain('embargoed issue in the hypervisor');
      expect(copy.raw.toString()).not.toContain('Patch attached in spirit');
      expect(headerOf(copy.raw, 'List-Id')).toContain(`<${announce}.${domain}>`);
      expect(headerOf(copy.raw, 'List-Post')).toBe('NO');
    }
    for (const member of [world.security, world.vendorA, world.vendorB]) {
      const copy = copies.find((message) => message.to.includes(member.address))!;
      const result = await decryptCopy(member, copy);
      expect(result.code).toBe(0);
      expect(result.has('DECRYPTION_OKAY')).toBe(true);
      expect(result.has('GOODSIG')).toBe(true);
      expect(result.args('VALIDSIG')?.[9] ?? result.args('VALIDSIG')?.[0]).toBe(world.listKeys[announce].fingerprint);
      const plain = result.stdout.toString();
      expect(plain).toContain('Patch attached in spirit');
      expect(plain).toContain('XSA-999: embargoed issue in the hypervisor');
      expect(plain).toContain(world.security.address);
      expect(plain).toContain(world.security.fingerprint);
      // Nobody else's key opens this copy.
      const other = [world.security, world.vendorA, world.vendorB].find((candidate) => candidate !== member)!;
      expect((await decryptCopy(other, copy)).has('DECRYPTION_OKAY')).toBe(false);
    }
  });
});
