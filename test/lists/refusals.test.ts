// One refusal per reason on the private lists: each bounce says what is wrong with the post, and a member and an outsider who make the same fault get the same bytes.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMemberKey, parseMemberKey } from '../../src/crypto/index.ts';
import { announce, bodyText, buildPost, copiesOfPost, discussion, domain, headerOf, startListWorld } from '../helpers/lists.ts';
import type { ListWorld, Person, PostOptions } from '../helpers/lists.ts';

let world: ListWorld;
let oldListKey: string;
const sharingAddress = `${discussion}@${domain}`;
const announceAddress = `${announce}@${domain}`;
const sendkey = `${discussion}-sendkey@${domain}`;

beforeAll(async () => {
  world = await startListWorld({ announce: { discussionList: discussion }, discussion: { maxMessageBytes: 40_000 } });
  // The sharing list's key before a rotation, kept beside the current one as `embargo list-key import` leaves it.
  const old = await generateMemberKey({ address: sharingAddress });
  oldListKey = (await parseMemberKey(old.armoredPublicKey)).fingerprint;
  await writeFile(join(world.daemon.config.dataDir, 'keys', `${discussion}.secret.asc.replaced-1000`), old.armoredSecretKey, { mode: 0o600 });
  for (const who of [world.vendorA, world.outsider]) await who.gpg.importKey(old.armoredPublicKey);
});

afterAll(async () => {
  await world?.stop();
});

/** Posts and returns the sender's bounce text with the per-message reference taken out; checks nobody else got anything. */
async function refusal(options: PostOptions, envelope: string): Promise<string> {
  const mark = world.relay.messages.length;
  const post = await buildPost(world, options);
  const id = await world.send(envelope, [options.to], post.raw);
  expect(await world.waitForState(id, ['done', 'rejected', 'held', 'discarded', 'shunted'])).toBe('rejected');
  const messages = await world.settle(mark);
  expect(copiesOfPost(messages, id)).toHaveLength(0);
  const bounces = messages.filter((message) => message.to.includes(envelope) && headerOf(message.raw, 'Auto-Submitted') === 'auto-replied');
  expect(bounces).toHaveLength(1);
  const text = bodyText(bounces[0].raw);
  expect(text).toContain(`Reference: ${id}`);
  return text.replace(`Reference: ${id}`, 'Reference: X');
}

/** The same fault made by a member and by an outsider: the two bounces are byte-identical apart from the reference. */
async function sameForMemberAndOutsider(fault: (sender: Person) => PostOptions, member: Person = world.vendorA): Promise<string> {
  const fromMember = await refusal(fault(member), member.address);
  const fromOutsider = await refusal(fault(world.outsider), world.outsider.address);
  expect(fromOutsider).toBe(fromMember);
  for (const someone of [world.security, world.vendorA, world.vendorB, world.expired]) expect(fromMember).not.toContain(someone.address);
  return fromMember;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('refusals on the private lists', () => {
  it('not encrypted to the list key: says so and where to get the key', async () => {
    const text = await sameForMemberAndOutsider((sender) => ({ from: sender, to: sharingAddress, subject: 'clear', body: 'in clear', encryptTo: null }));
    expect(text).toContain("It was not encrypted to this list's OpenPGP key.");
    expect(text).toContain(sendkey);
  });

  it('encrypted to the key the list used before a rotation: says the list key changed', async () => {
    const text = await sameForMemberAndOutsider((sender) => ({ from: sender, to: sharingAddress, subject: 'old', body: 'old key', encryptToKey: oldListKey }));
    expect(text).toContain('encrypted to a key this list no longer uses: the list has a new OpenPGP key');
    expect(text).toContain(sendkey);
  });

  it('not signed: says so', async () => {
    const text = await sameForMemberAndOutsider((sender) => ({ from: sender, to: sharingAddress, subject: 'unsigned', body: 'unsigned', signer: null }));
    expect(text).toContain('It is not signed.');
  });

  it('signed by a key not allowed to post here: the same words for a member\'s key under another member\'s From and a stranger\'s key', async () => {
    const text = await sameForMemberAndOutsider((sender) => ({ from: sender, fromHeader: world.vendorB.address, to: sharingAddress, subject: 'forged', body: 'forged' }));
    expect(text).toContain('Its signature is not from a key allowed to post to this list.');
  });

  it('the announce list takes posts from its posters only, and names the discussion list', async () => {
    const text = await sameForMemberAndOutsider((sender) => ({ from: sender, to: announceAddress, subject: 'a reply', body: 'I have a question' }));
    expect(text).toContain(`${announceAddress} is an announcement list: it takes messages only from its posters`);
    expect(text).toContain(`Discussion of what is announced here belongs on ${sharingAddress}.`);
  });

  it('too large: gives the limit', async () => {
    const text = await sameForMemberAndOutsider((sender) => ({ from: sender, to: sharingAddress, subject: 'big', body: 'x'.repeat(60_000) }));
    expect(text).toContain('It is larger than this list accepts (40000 bytes).');
  });

  it('attachments not covered by the signature: names the attachment by position and digest', async () => {
    const patch = 'diff --git a/x b/x\n+fix\n';
    const entity = async (sender: Person) => {
      const clearsigned = (await sender.gpg.clearsign('Advisory text without any checksum.\n', sender.fingerprint)).toString().replace(/\r?\n/g, '\r\n');
      return (
        'Content-Type: multipart/mixed; boundary="m"\r\n\r\n' +
        `--m\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${clearsigned}\r\n` +
        `--m\r\nContent-Type: text/x-diff; name="fix.patch"\r\nContent-Disposition: attachment; filename="fix.patch"\r\n\r\n${patch}\r\n--m--\r\n`
      );
    };
    const member = await entity(world.security);
    const outsider = await entity(world.outsider);
    const fromMember = await refusal({ from: world.security, to: announceAddress, subject: 'XSA', body: '', entity: member, signer: null }, world.security.address);
    const fromOutsider = await refusal({ from: world.outsider, to: announceAddress, subject: 'XSA', body: '', entity: outsider, signer: null }, world.outsider.address);
    expect(fromOutsider).toBe(fromMember);
    expect(fromMember).toContain('Not all of it is covered by its signature.');
    expect(fromMember).toContain(`Not covered: attachment 1 of 1 (${Buffer.byteLength(patch)} bytes, SHA-256 ${sha256(patch)}).`);
  });
});
