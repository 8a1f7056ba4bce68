// Invariant 2 (threat: posting as someone else): a member is recognised by a valid signature from their registered key, not by From.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildPost, copiesOfPost, decryptCopy, discussion, domain, startListWorld } from '../helpers/lists.ts';
import type { ListWorld, PostOptions } from '../helpers/lists.ts';

let world: ListWorld;
const listAddress = `${discussion}@${domain}`;

beforeAll(async () => {
  world = await startListWorld();
});

afterAll(async () => {
  await world?.stop();
});

async function outcome(options: PostOptions, envelope: string): Promise<{ state: string; delivered: number }> {
  const mark = world.relay.messages.length;
  const post = await buildPost(world, options);
  const id = await world.send(envelope, [listAddress], post.raw);
  const state = await world.waitForState(id, ['done', 'rejected', 'held', 'discarded', 'shunted']);
  const messages = await world.settle(mark);
  return { state, delivered: copiesOfPost(messages, id).length };
}

it('refuses a member\'s From without their signature, and another member\'s signature under their From', async () => {
  // From vendor B, signed by vendor A (a valid member key, but not the one registered for B).
  expect(await outcome({ from: world.vendorA, fromHeader: world.vendorB.address, to: listAddress, subject: 'as B', body: 'I am B' }, world.vendorB.address)).toEqual({
    state: 'rejected',
    delivered: 0,
  });
  // From vendor B, encrypted but not signed: the From header alone counts for nothing.
  expect(
    await outcome({ from: world.vendorB, to: listAddress, subject: 'unsigned', body: 'trust me', signer: null }, world.vendorB.address),
  ).toEqual({ state: 'rejected', delivered: 0 });
  // From vendor B, signed by an outsider's key that carries vendor B's address? The outsider's key is not registered.
  expect(await outcome({ from: world.outsider, fromHeader: world.vendorB.address, to: listAddress, subject: 'forged', body: 'forged' }, world.vendorB.address)).toEqual({
    state: 'rejected',
    delivered: 0,
  });
});

it('accepts the same post signed by the key registered for its From, and names that signer', async () => {
  const mark = world.relay.messages.length;
  const post = await buildPost(world, { from: world.vendorB, to: listAddress, subject: 'really B', body: 'This is B.' });
  const id = await world.send(world.vendorB.address, [listAddress], post.raw);
  expect(await world.waitForState(id, ['done', 'rejected'])).toBe('done');
  const copies = copiesOfPost(await world.settle(mark), id);
  expect(copies).toHaveLength(3);
  const plain = (await decryptCopy(world.vendorA, copies.find((copy) => copy.to.includes(world.vendorA.address))!)).stdout.toString();
  expect(plain).toContain(`registered key of ${world.vendorB.address}`);
  expect(plain).toContain(world.vendorB.fingerprint);
});
