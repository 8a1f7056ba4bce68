// End to end: the sharing list's membership is the pre-disclosure list's (membersFrom); an organisation removed there stops receiving sharing posts at the next reload.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { announce, buildPost, copiesOfPost, discussion, domain, person, startListWorld } from '../helpers/lists.ts';
import type { ListWorld, Person } from '../helpers/lists.ts';

let world: ListWorld;
let vendorD: Person;
const sharingAddress = `${discussion}@${domain}`;

beforeAll(async () => {
  vendorD = await person('security@vendor-d.example', 'Vendor D PSIRT');
  world = await startListWorld({
    discussion: { membersFrom: [announce] },
    extraAnnounceMembers: [{ email: vendorD.address, organisation: vendorD.name, key: '../keys/vendor-d.asc', roles: ['recipient'] }],
    files: { 'keys/vendor-d.asc': vendorD.armored },
  });
  for (const key of Object.values(world.listKeys)) await vendorD.gpg.importKey(key.armored);
});

afterAll(async () => {
  await world?.stop();
  await vendorD?.gpg.cleanup();
});

async function postToSharing(): Promise<string[]> {
  const mark = world.relay.messages.length;
  const post = await buildPost(world, { from: world.vendorA, to: sharingAddress, subject: 'patch review', body: 'Our backport is attached in spirit.' });
  const id = await world.send(world.vendorA.address, [sharingAddress], post.raw);
  expect(await world.waitForState(id, ['done', 'rejected', 'held', 'shunted', 'discarded'])).toBe('done');
  const messages = await world.settle(mark);
  return copiesOfPost(messages, id).flatMap((message) => message.to).sort();
}

it('a post to the sharing list reaches every pre-disclosure member; after one is removed from the pre-disclosure file, the next does not reach them', async () => {
  const first = await postToSharing();
  // Everyone on the pre-disclosure list with a usable key (vendor C's has expired: a notice instead).
  expect(first).toEqual([world.security.address, world.vendorA.address, world.vendorB.address, vendorD.address].sort());

  const file = join(world.daemon.config.configDir, 'lists', `${announce}.yaml`);
  const settings = parse(readFileSync(file, 'utf8')) as { members: Array<{ email: string }> };
  settings.members = settings.members.filter((member) => member.email !== vendorD.address);
  writeFileSync(file, stringify(settings));
  const live = () => world.daemon.daemon!.config().lists.get(discussion)!.members.map((member) => member.address);
  const deadline = Date.now() + 20_000;
  while (live().includes(vendorD.address)) {
    if (Date.now() > deadline) throw new Error('the edit was not reloaded');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  const second = await postToSharing();
  expect(second).toEqual([world.security.address, world.vendorA.address, world.vendorB.address].sort());
});
