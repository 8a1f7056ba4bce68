// Invariant 1 (threat: embargoed text leaking to a member without a usable key, or to disk): no plaintext of an encrypted list leaves the server or lands on disk; members without a usable key get a notice.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { announce, bodyText, buildPost, domain, person, serverAdmin, startListWorld } from '../helpers/lists.ts';
import type { ListWorld, Person } from '../helpers/lists.ts';

let world: ListWorld;
let revoked: Person;
const keyless = 'security@vendor-nokey.example';
const marker = 'PLAINTEXT-MARKER-7f3a91 embargoed details';

beforeAll(async () => {
  revoked = await person('security@vendor-revoked.example', 'Vendor R PSIRT');
  const revokedKey = await revoked.gpg.revoke(revoked.fingerprint);
  world = await startListWorld({
    extraAnnounceMembers: [
      { email: revoked.address, organisation: 'Vendor R', key: '../keys/vendor-r.asc', roles: ['recipient'] },
      { email: keyless, organisation: 'Vendor N', roles: ['recipient'] },
    ],
    files: { 'keys/vendor-r.asc': revokedKey },
  });
});

afterAll(async () => {
  await world?.stop();
  await revoked?.gpg.cleanup();
});

it('sends members with an expired, revoked or missing key a notice, never the text, and keeps the text off the wire and off disk', async () => {
  const mark = world.relay.messages.length;
  const post = await buildPost(world, { from: world.security, to: `${announce}@${domain}`, subject: "Advisory (real subject inside)", body: `Details: ${marker}` });
  const id = await world.send(world.security.address, [`${announce}@${domain}`], post.raw);
  expect(await world.waitForState(id, ['done', 'rejected', 'shunted'])).toBe('done');
  const messages = await world.settle(mark);

  // Nothing that left the server carries the plaintext.
  expect(messages.length).toBeGreaterThan(0);
  for (const message of messages) expect(message.raw.toString()).not.toContain('PLAINTEXT-MARKER-7f3a91');

  for (const [address, why] of [
    [world.expired.address, /expired/],
    [revoked.address, /revoked/],
    [keyless, /no key/],
  ] as const) {
    const received = messages.filter((message) => message.to.includes(address));
    expect(received).toHaveLength(1);
    expect(bodyText(received[0].raw)).toContain('withheld');
    expect(bodyText(received[0].raw)).toMatch(why);
  }
  const adminText = bodyText(messages.find((message) => message.to.includes(serverAdmin))!.raw);
  for (const address of [world.expired.address, revoked.address, keyless]) expect(adminText).toContain(address);

  // Nothing on disk: the database (spool, queue, archive), its WAL, the keys — no file holds the plaintext.
  for (const file of readdirSync(world.daemon.config.dataDir, { recursive: true }) as string[]) {
    const path = join(world.daemon.config.dataDir, file);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      continue; // a directory
    }
    expect(bytes.includes('PLAINTEXT-MARKER-7f3a91'), `plaintext found in ${file}`).toBe(false);
  }
});
