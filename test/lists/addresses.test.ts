// End to end: the other list addresses — NAME-owner@, signed NAME-request@ commands, NAME-bounces+TOKEN@ — and the archive hand-off.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announce, bodyText, buildPost, decryptCopy, discussion, domain, headerOf, publicList, serverAdmin, startListWorld } from '../helpers/lists.ts';
import type { ListWorld } from '../helpers/lists.ts';
import type { RelayMessage } from '../helpers/relay.ts';
import { makeMessage } from '../helpers/smtp.ts';
import { handleBounce } from '../helpers/bounces.ts';
import { loadOrCreateServerSecret } from '../../src/queues/verp.ts';

let world: ListWorld;

beforeAll(async () => {
  world = await startListWorld();
});

afterAll(async () => {
  await world?.stop();
});

const toOf = (messages: RelayMessage[], address: string) => messages.filter((message) => message.to.includes(address));

async function exchange(envelope: string, to: string, raw: string | Buffer): Promise<RelayMessage[]> {
  const mark = world.relay.messages.length;
  const id = await world.send(envelope, [to], raw);
  await world.waitForState(id, ['done', 'discarded', 'rejected', 'shunted']);
  return world.settle(mark);
}

describe('NAME-owner@', () => {
  it('forwards to the admins: encrypted to those with a key, a stub without the content to those without', async () => {
    const owner = `${discussion}-owner@${domain}`;
    const messages = await exchange('someone@outside.example', owner, makeMessage({ from: 'someone@outside.example', to: owner, subject: 'Please add us', body: 'CONTACT-DETAILS-123' }));
    expect(messages.every((message) => !message.raw.toString().includes('CONTACT-DETAILS-123'))).toBe(true);
    const toSecurity = toOf(messages, world.security.address);
    expect(toSecurity).toHaveLength(1);
    const opened = await decryptCopy(world.security, toSecurity[0]);
    expect(opened.has('GOODSIG')).toBe(true);
    expect(opened.stdout.toString()).toContain('someone@outside.example');
    const attachment = /Content-Transfer-Encoding: base64\r?\n\r?\n([\s\S]*?)\r?\n--/.exec(opened.stdout.toString())![1];
    expect(Buffer.from(attachment.replace(/\s/g, ''), 'base64').toString()).toContain('CONTACT-DETAILS-123');
    const stub = toOf(messages, serverAdmin);
    expect(stub).toHaveLength(1);
    expect(bodyText(stub[0].raw)).toContain('not attached');
  });
});

describe('NAME-request@ for members of a private list', () => {
  it('answers a signed list-keys with the fingerprints, encrypted to the member only', async () => {
    const request = `${discussion}-request@${domain}`;
    const post = await buildPost(world, { from: world.vendorA, to: request, subject: 'list-keys', body: '', encryptTo: discussion });
    const messages = await exchange(world.vendorA.address, request, post.raw);
    expect(messages).toHaveLength(1);
    expect(messages[0].raw.toString()).not.toContain(world.vendorB.fingerprint);
    // Quoted-printable soft line breaks undone.
    const plain = (await decryptCopy(world.vendorA, messages[0])).stdout.toString().replace(/=\r?\n/g, '');
    expect(plain).toContain(`${world.vendorB.address} (${world.vendorB.name}): ${world.vendorB.fingerprint}`);
  });

  it('refuses list-keys from a non-member and from an unsigned request with the same answer', async () => {
    const request = `${discussion}-request@${domain}`;
    const stranger = await exchange('x@outside.example', request, makeMessage({ from: 'x@outside.example', to: request, subject: 'list-keys' }));
    const unsigned = await exchange(world.vendorB.address, request, makeMessage({ from: world.vendorB.address, to: request, subject: 'list-keys' }));
    const strip = (messages: RelayMessage[]) => bodyText(messages[0].raw);
    expect(strip(stranger)).toContain('needs a request signed');
    expect(strip(stranger)).toBe(strip(unsigned));
    expect(strip(stranger)).not.toContain(world.vendorA.fingerprint);
  });

  it('returns an archived post with get, decrypted from the archive and encrypted to the asking member', async () => {
    const mark = world.relay.messages.length;
    const post = await buildPost(world, { from: world.vendorB, to: `${discussion}@${domain}`, subject: 'Archived one', body: 'ARCHIVED-TEXT-42' });
    const id = await world.send(world.vendorB.address, [`${discussion}@${domain}`], post.raw);
    expect(await world.waitForState(id, ['done', 'rejected'])).toBe('done');
    await world.settle(mark);
    // The archive row exists and is encrypted at rest.
    const row = world.daemon.daemon!.db.prepare('SELECT encrypted, message FROM archive_entries WHERE spool_id = ?').get(id) as { encrypted: number; message: Buffer };
    expect(row.encrypted).toBe(1);
    expect(row.message.toString()).not.toContain('ARCHIVED-TEXT-42');

    const request = `${discussion}-request@${domain}`;
    const ask = await buildPost(world, { from: world.vendorA, to: request, subject: 'archive', body: `get <${post.messageId}>`, encryptTo: discussion });
    const messages = await exchange(world.vendorA.address, request, ask.raw);
    expect(messages).toHaveLength(1);
    expect(messages[0].raw.toString()).not.toContain('ARCHIVED-TEXT-42');
    const plain = (await decryptCopy(world.vendorA, messages[0])).stdout.toString();
    const attachment = /filename="archived.eml"\r?\nContent-Transfer-Encoding: base64\r?\n\r?\n([\s\S]*?)\r?\n--/.exec(plain)![1];
    expect(Buffer.from(attachment.replace(/\s/g, ''), 'base64').toString()).toContain('ARCHIVED-TEXT-42');
  });
});

describe('NAME-bounces+TOKEN@', () => {
  it('counts DSNs against the member (once a day, for different posts) and tells the admins once delivery is suspended', async () => {
    const list = `${discussion}@${domain}`;
    const day = 86_400_000;
    const dsnFor = (returnPath: string, index: number) =>
      `From: MAILER-DAEMON@mx.vendor-a.example\r\nTo: ${returnPath}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-${index}@mx.vendor-a.example>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n` +
      `--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n` +
      `--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.vendor-a.example\r\n\r\n` +
      `Final-Recipient: rfc822; ${world.vendorA.address}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--b--\r\n`;
    // Seven posts: vendor A's copy of each goes out with its own return path.
    const returnPaths: string[] = [];
    for (let index = 0; index < 7; index++) {
      const mark = world.relay.messages.length;
      const post = await buildPost(world, { from: world.vendorB, to: list, subject: `post ${index}`, body: `text ${index}` });
      const id = await world.send(world.vendorB.address, [list], post.raw);
      await world.waitForState(id, ['done']);
      const copy = toOf(await world.settle(mark), world.vendorA.address)[0]!;
      expect(copy.from).toMatch(new RegExp(`^${discussion}-bounces\\+[^@]+@${domain.replace(/\./g, '\\.')}$`));
      returnPaths.push(copy.from);
    }
    const tokenOf = (returnPath: string) => returnPath.slice(returnPath.indexOf('+') + 1, returnPath.indexOf('@'));
    // The first six came back on the six days before (one a day: a score rises at most once a day), scored as the
    // bounce role scores them; not yet past the threshold of 5.
    const db = world.daemon.daemon!.db;
    const secret = loadOrCreateServerSecret(world.daemon.config.dataDir);
    for (let index = 0; index < 6; index++) {
      const outcome = handleBounce(db, { list: discussion, token: tokenOf(returnPaths[index]!), raw: Buffer.from(dsnFor(returnPaths[index]!, index)), secret, now: Date.now() - (6 - index) * day - 3_600_000 });
      expect(outcome).toMatchObject({ action: 'scored', suspended: false });
    }
    // A second report for an already counted copy, today: it does not count again.
    const repeat = await exchange('', returnPaths[5]!, dsnFor(returnPaths[5]!, 50));
    expect(toOf(repeat, serverAdmin).some((message) => /suspended/.test(headerOf(message.raw, 'Subject') ?? ''))).toBe(false);
    // Today's bounce, for a seventh post, over SMTP: past the threshold, for several posts: suspended, admins told.
    const replies = await exchange('', returnPaths[6]!, dsnFor(returnPaths[6]!, 6));
    const suspendedNotice = toOf(replies, serverAdmin).find((message) => /suspended/.test(headerOf(message.raw, 'Subject') ?? ''));
    expect(suspendedNotice).toBeDefined();
    expect(bodyText(suspendedNotice!.raw)).toContain(world.vendorA.address);
    // The next post is not sent to the suspended member.
    const mark = world.relay.messages.length;
    const post = await buildPost(world, { from: world.vendorB, to: list, subject: 'after', body: 'text after' });
    await world.waitForState(await world.send(world.vendorB.address, [list], post.raw), ['done']);
    expect(toOf(await world.settle(mark), world.vendorA.address)).toHaveLength(0);
  });
});

describe('archive hand-off', () => {
  it('files public posts in the public archive and announce posts encrypted', async () => {
    const publicPost = makeMessage({ from: 'Ann <ann@example.net>', to: `${publicList}@${domain}`, subject: 'Public hello', body: 'public words', messageId: '<public-archive-1@example.net>' });
    await exchange('ann@example.net', `${publicList}@${domain}`, publicPost);
    const row = world.daemon.daemon!.db.prepare(`SELECT visibility, encrypted, sender_address, subject FROM archive_entries WHERE list = ? AND message_id = ?`).get(publicList, 'public-archive-1@example.net');
    expect(row).toEqual({ visibility: 'public', encrypted: 0, sender_address: 'ann@example.net', subject: 'Public hello' });
    const advisory = await buildPost(world, { from: world.security, to: `${announce}@${domain}`, subject: 'XSA', body: 'advisory' });
    await exchange(world.security.address, `${announce}@${domain}`, advisory.raw);
    const privateRow = world.daemon.daemon!.db.prepare(`SELECT visibility, encrypted, subject FROM archive_entries WHERE list = ? ORDER BY id DESC LIMIT 1`).get(announce);
    expect(privateRow).toMatchObject({ visibility: 'private', encrypted: 1 });
    // The archive itself never schedules a release (advisories do, from signed content only).
    const releaseColumns = world.daemon.daemon!.db.prepare(`SELECT count(*) AS n FROM archive_entries WHERE release_at IS NOT NULL`).get() as { n: number };
    expect(releaseColumns.n).toBe(0);
  });
});
