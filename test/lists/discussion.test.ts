// End to end: the moderated discussion list — held, decided by the CLI or by a moderator's signed reply, then delivered or bounced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyText, buildPost, copiesOfPost, decryptCopy, discussion, domain, headerOf, runCli, startListWorld } from '../helpers/lists.ts';
import type { ListWorld } from '../helpers/lists.ts';
import type { RelayMessage } from '../helpers/relay.ts';

let world: ListWorld;
const listAddress = `${discussion}@${domain}`;

beforeAll(async () => {
  world = await startListWorld({ discussion: { moderated: true, replyTo: 'list' } });
});

afterAll(async () => {
  await world?.stop();
});

const toOf = (messages: RelayMessage[], address: string) => messages.filter((message) => message.to.includes(address));

describe('moderated discussion list', () => {
  it('holds a member post, tells the moderator encrypted, and delivers it once approved with the CLI', async () => {
    let mark = world.relay.messages.length;
    const post = await buildPost(world, {
      from: world.vendorA,
      to: listAddress,
      subject: 'Backport of the XSA-999 fix',
      body: 'Our backport to 4.17 is below.',
      headers: { 'In-Reply-To': '<thread-root@test.example>', References: '<thread-root@test.example>' },
    });
    const id = await world.send(world.vendorA.address, [listAddress], post.raw);
    expect(await world.waitForState(id, ['done', 'held', 'rejected', 'shunted'])).toBe('held');
    let messages = await world.settle(mark);
    expect(copiesOfPost(messages, id)).toHaveLength(0);
    // The moderator's notice is encrypted to them: no plaintext of the post on the wire.
    const notices = toOf(messages, world.security.address);
    expect(notices).toHaveLength(1);
    expect(notices[0].raw.toString()).not.toContain('backport to 4.17');
    const opened = await decryptCopy(world.security, notices[0]);
    expect(opened.stdout.toString()).toContain(id);
    // The server admin (no key) stands in for nobody here: the list has a moderator, so only they are told.
    expect(messages.every((message) => !message.raw.toString().includes('backport to 4.17'))).toBe(true);

    const held = await runCli(['held', discussion, '--json', '--config', world.daemon.config.configDir]);
    expect(held.code).toBe(0);
    const list = JSON.parse(held.stdout) as Array<{ id: string; sender: string }>;
    expect(list.map((entry) => entry.id)).toEqual([id]);
    expect(list[0].sender).toBe(world.vendorA.address);

    mark = world.relay.messages.length;
    const approved = await runCli(['approve', id, '--config', world.daemon.config.configDir]);
    expect(approved.code).toBe(0);
    expect(await world.waitForState(id, ['done', 'rejected', 'shunted'])).toBe('done');
    messages = await world.settle(mark);
    const copies = copiesOfPost(messages, id);
    expect(copies.flatMap((message) => message.to).sort()).toEqual([world.security.address, world.vendorA.address, world.vendorB.address].sort());
    const copy = copies.find((message) => message.to.includes(world.vendorB.address))!;
    // Threading and Reply-To travel inside the encryption only (invariant 9).
    expect(headerOf(copy.raw, 'In-Reply-To')).toBeUndefined();
    expect(headerOf(copy.raw, 'Reply-To')).toBeUndefined();
    expect(headerOf(copy.raw, 'List-Post')).toBe(`<mailto:${listAddress}>`);
    const plain = (await decryptCopy(world.vendorB, copy)).stdout.toString();
    expect(headerOf(plain, 'In-Reply-To')).toBe('<thread-root@test.example>');
    expect(headerOf(plain, 'Reply-To')).toBe(listAddress);
    expect(headerOf(plain, 'Message-ID')).toBe(`<${post.messageId}>`);
    expect(plain).toContain('backport to 4.17');
    expect(plain).toContain(world.vendorA.address);

    expect(JSON.parse((await runCli(['held', discussion, '--json', '--config', world.daemon.config.configDir])).stdout)).toEqual([]);
    // Deciding twice is refused.
    expect((await runCli(['approve', id, '--config', world.daemon.config.configDir])).code).toBe(1);
  });

  it("lets a moderator's signed reply to sharing-request@ reject a held post; the poster gets the reason", async () => {
    let mark = world.relay.messages.length;
    const post = await buildPost(world, { from: world.vendorB, to: listAddress, subject: 'Off topic', body: 'Lunch on Friday?' });
    const id = await world.send(world.vendorB.address, [listAddress], post.raw);
    expect(await world.waitForState(id, ['done', 'held', 'rejected', 'shunted'])).toBe('held');
    await world.settle(mark);

    mark = world.relay.messages.length;
    const reply = await buildPost(world, {
      from: world.security,
      to: `${discussion}-request@${domain}`,
      subject: `Re: ${discussion}: a post is held for moderation (${id})`,
      body: `reject ${id} please keep this list on topic\n\n> quoted notice text`,
      encryptTo: discussion,
    });
    const replyId = await world.send(world.security.address, [`${discussion}-request@${domain}`], reply.raw);
    expect(await world.waitForState(replyId, ['done', 'discarded', 'shunted'])).toBe('done');
    expect(await world.waitForState(id, ['done', 'rejected', 'shunted'])).toBe('rejected');
    const messages = await world.settle(mark);
    const bounce = toOf(messages, world.vendorB.address).find((message) => headerOf(message.raw, 'Auto-Submitted') === 'auto-replied');
    expect(bounce).toBeDefined();
    expect(bodyText(bounce!.raw)).toContain('please keep this list on topic');
    expect(copiesOfPost(messages, id)).toHaveLength(0);
  });

  it('ignores "approve" from a member who is not a moderator', async () => {
    let mark = world.relay.messages.length;
    const post = await buildPost(world, { from: world.vendorB, to: listAddress, subject: 'Second try', body: 'Please approve me.' });
    const id = await world.send(world.vendorB.address, [listAddress], post.raw);
    expect(await world.waitForState(id, ['held'])).toBe('held');
    await world.settle(mark);
    mark = world.relay.messages.length;
    const request = await buildPost(world, { from: world.vendorA, to: `${discussion}-request@${domain}`, subject: `approve ${id}`, body: '', encryptTo: discussion });
    const requestId = await world.send(world.vendorA.address, [`${discussion}-request@${domain}`], request.raw);
    await world.waitForState(requestId, ['done']);
    const replies = toOf(await world.settle(mark), world.vendorA.address);
    expect(replies).toHaveLength(1);
    expect((await decryptCopy(world.vendorA, replies[0])).stdout.toString()).toContain('needs a request signed');
    expect(world.daemon.daemon!.spool.get(id)!.state).toBe('held');
    await runCli(['reject', id, '--config', world.daemon.config.configDir]);
    await world.waitForState(id, ['rejected']);
  });
});

describe('moderation by mail', () => {
  it('takes a bare "approve" in a signed reply to the notice, the held id read from the Subject', async () => {
    let mark = world.relay.messages.length;
    const post = await buildPost(world, { from: world.vendorB, to: listAddress, subject: 'Worth sharing', body: 'A mitigation that works.' });
    const id = await world.send(world.vendorB.address, [listAddress], post.raw);
    expect(await world.waitForState(id, ['held'])).toBe('held');
    await world.settle(mark);
    mark = world.relay.messages.length;
    const reply = await buildPost(world, {
      from: world.security,
      to: `${discussion}-request@${domain}`,
      subject: `Re: ${discussion}: a post is held for moderation (${id})`,
      body: 'approve\n\n> A message to the list is held',
      encryptTo: discussion,
    });
    await world.waitForState(await world.send(world.security.address, [`${discussion}-request@${domain}`], reply.raw), ['done']);
    expect(await world.waitForState(id, ['done', 'rejected'])).toBe('done');
    const messages = await world.settle(mark);
    expect(copiesOfPost(messages, id)).toHaveLength(3);
    const answer = toOf(messages, world.security.address).find((message) => headerOf(message.raw, 'Auto-Submitted') === 'auto-replied')!;
    expect((await decryptCopy(world.security, answer)).stdout.toString()).toContain(`Approved ${id}`);
  });
});
