// Invariant 9: an encrypted copy tells an observer on the wire only the list, the recipient and the size; the database and logs keep no organisation or display name.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copiesOfPost, decryptCopy, discussion, domain, headerOf, person, startListWorld } from '../helpers/lists.ts';
import type { ListWorld, Person } from '../helpers/lists.ts';
import type { RelayMessage } from '../helpers/relay.ts';

const listAddress = `${discussion}@${domain}`;
const organisation = 'Zanzibar Quokka Secret Org';
const displayName = 'Quentin Quuxley-Marlowe';
const subject = 'Re: XSA-781 flimflamgoose backport';
const threadRoot = 'thread-root.7q2@vendor-q.example';
const parent = 'parent.8w3@vendor-q.example';
const postId = 'reply.9e4@vendor-q.example';

let world: ListWorld;
let poster: Person;
let post: { id: string; copies: RelayMessage[] };

beforeAll(async () => {
  poster = await person('security@vendor-q.example', displayName);
  world = await startListWorld({
    extraDiscussionMembers: [{ email: poster.address, organisation, key: '../keys/vendor-q.asc', roles: ['recipient'] }],
    files: { 'keys/vendor-q.asc': poster.armored },
  });
  for (const key of Object.values(world.listKeys)) await poster.gpg.importKey(key.armored);

  // A reply in a thread, signed and encrypted as Thunderbird does it: the real headers inside (protected headers),
  // and, as many clients still do, the threading ids and the Message-ID outside too. The display name only inside.
  const inner =
    `From: "${displayName}" <${poster.address}>\r\nTo: ${listAddress}\r\nSubject: ${subject}\r\nMessage-ID: <${postId}>\r\n` +
    `In-Reply-To: <${parent}>\r\nReferences: <${threadRoot}> <${parent}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe second hunk is needed too.\r\n`;
  const ciphertext = (await poster.gpg.encrypt(inner, { recipients: [world.listKeys[discussion].fingerprint], signer: poster.fingerprint })).toString('utf8');
  const boundary = 'enc-metadata';
  const raw =
    `From: ${poster.address}\r\nTo: ${listAddress}\r\nSubject: ...\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${postId}>\r\n` +
    `In-Reply-To: <${parent}>\r\nReferences: <${threadRoot}> <${parent}>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
    `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
    `--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n${ciphertext.replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`;
  const mark = world.relay.messages.length;
  const id = await world.send(poster.address, [listAddress], raw);
  expect(await world.waitForState(id, ['done', 'rejected', 'held', 'shunted'])).toBe('done');
  post = { id, copies: copiesOfPost(await world.settle(mark), id) };
}, 90_000);

afterAll(async () => {
  await world?.stop();
  await poster?.gpg.cleanup();
});

/** Everything of a copy an observer on the wire reads: the whole message with the armored ciphertext cut out. */
function outsideTheCiphertext(message: RelayMessage): string {
  return message.raw.toString('latin1').replace(/-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/, '[ciphertext]');
}

it('a member’s copy of a reply in a thread carries nothing about the poster or the thread outside the ciphertext', async () => {
  const copy = post.copies.find((message) => message.to.includes(world.vendorB.address))!;
  expect(copy).toBeDefined();
  const outside = outsideTheCiphertext(copy);
  for (const secret of [organisation, displayName, 'Quuxley', poster.address, 'vendor-q.example', postId, threadRoot, parent, subject, 'flimflamgoose']) {
    expect(outside, secret).not.toContain(secret);
  }
  // What is there: the list's own From, the server's own Message-ID, no threading, a generic Subject, List-*.
  const head = outside.split(/\r\n\r\n/)[0]!;
  const names = head.split(/\r\n(?![ \t])/).map((line) => line.slice(0, line.indexOf(':')).toLowerCase());
  expect(names).not.toContain('in-reply-to');
  expect(names).not.toContain('references');
  expect(names).not.toContain('reply-to');
  expect(headerOf(copy.raw, 'From')).toBe(`"${discussion}" <${listAddress}>`);
  expect(headerOf(copy.raw, 'Message-ID')).toMatch(new RegExp(`^<${post.id.toLowerCase()}\\.${discussion}@${domain.replace(/\./g, '\\.')}>$`));
  expect(headerOf(copy.raw, 'Subject')).toBe('Encrypted message');
  expect(headerOf(copy.raw, 'List-Id')).toContain(`<${discussion}.${domain}>`);
  // The envelope names the list's bounce address and the recipient, nothing else.
  expect(copy.from).toMatch(new RegExp(`^${discussion}-bounces\\+`));

  // Inside, members get all of it: who wrote, the real Subject, and the thread.
  const plain = (await decryptCopy(world.vendorB, copy)).stdout.toString();
  expect(headerOf(plain, 'Subject')).toBe(subject);
  expect(headerOf(plain, 'Message-ID')).toBe(`<${postId}>`);
  expect(headerOf(plain, 'In-Reply-To')).toBe(`<${parent}>`);
  expect(headerOf(plain, 'References')).toBe(`<${threadRoot}> <${parent}>`);
  expect(headerOf(plain, 'From')).toContain(`${displayName} via ${discussion}`);
});

it('the database, its WAL and the logs hold neither the organisation nor the display name after the post', () => {
  const dbFile = world.daemon.config.dbFile;
  const files = [dbFile, `${dbFile}-wal`].map((file) => ({ file, bytes: readFileSync(file) }));
  const logs = JSON.stringify(world.daemon.logs());
  for (const needle of [organisation, displayName, 'Quuxley']) {
    for (const { file, bytes } of files) expect(bytes.includes(Buffer.from(needle, 'utf8')), `${needle} in ${file}`).toBe(false);
    expect(logs.includes(needle), `${needle} in the logs`).toBe(false);
  }
  // The outbound rows exist (the copies went through them), so the check above read real rows.
  const rows = world.daemon.daemon!.db.prepare('SELECT COUNT(*) AS count FROM outbound WHERE spool_id = ?').get(post.id) as { count: number };
  expect(rows.count).toBeGreaterThan(0);
});
