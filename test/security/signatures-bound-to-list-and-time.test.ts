// Invariant 7 (a signature is accepted once, for the list it names, while it is fresh): cross-list replay, old and future signatures, signed To/Cc, signed Subject.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpgTime } from '../helpers/gpg.ts';
import { announce, bodyText, buildPost, copiesOfPost, decryptCopy, discussion, domain, headerOf, newMessageId, person, publicList, startListWorld } from '../helpers/lists.ts';
import type { ListWorld, Person } from '../helpers/lists.ts';
import type { RelayMessage } from '../helpers/relay.ts';

let world: ListWorld;
/** A poster on the announce list whose key is ten days old, so it can make signatures dated days back. */
let veteran: Person;
const announceAddress = `${announce}@${domain}`;
const discussionAddress = `${discussion}@${domain}`;
const publicAddress = `${publicList}@${domain}`;
const final = ['done', 'rejected', 'held', 'discarded', 'shunted'] as const;
const toOf = (messages: RelayMessage[], address: string) => messages.filter((message) => message.to.includes(address));

beforeAll(async () => {
  veteran = await person('psirt@veteran.example', 'Veteran PSIRT', { at: new Date(Date.now() - 10 * 86_400_000) });
  world = await startListWorld({
    extraAnnounceMembers: [{ email: veteran.address, organisation: 'Veteran Org', key: '../keys/veteran.asc', roles: ['poster', 'recipient'] }],
    files: { 'keys/veteran.asc': veteran.armored },
  });
  for (const key of Object.values(world.listKeys)) await veteran.gpg.importKey(key.armored);
}, 90_000);

afterAll(async () => {
  await world?.stop();
  await veteran?.gpg.cleanup();
});

const textEntity = (body: string, headers = '') =>
  `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n${headers}\r\n${body.replace(/\r?\n/g, '\r\n')}\r\n`;

/** RFC 3156 multipart/signed around `content`, signed by `signer` (as of `at`, when given). */
async function signedEntity(signer: Person, content: string, at?: Date): Promise<string> {
  const timeArgs = at ? ['--faked-system-time', `${gpgTime(at)}!`] : [];
  const signature = (await signer.gpg.detachSign(content, signer.fingerprint, [...timeArgs, '--digest-algo', 'SHA256'])).toString('utf8').replace(/\r?\n/g, '\r\n');
  const boundary = `sig-${Math.random().toString(36).slice(2)}`;
  return (
    `Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="${boundary}"\r\n\r\n` +
    `--${boundary}\r\n${content}\r\n--${boundary}\r\nContent-Type: application/pgp-signature; name="signature.asc"\r\n\r\n${signature}\r\n--${boundary}--\r\n`
  );
}

/** A PGP/MIME post of `inner` encrypted to `list`'s key by `encryptor`, with the outer headers anyone may write. */
async function encryptedPost(options: { list: string; from: string; inner: string; encryptor: Person; subject?: string }): Promise<string> {
  const ciphertext = await options.encryptor.gpg.encrypt(options.inner, { recipients: [world.listKeys[options.list].fingerprint] });
  const boundary = `enc-${Math.random().toString(36).slice(2)}`;
  return (
    `From: ${options.from}\r\nTo: ${options.list}@${domain}\r\nSubject: ${options.subject ?? '...'}\r\nDate: ${new Date().toUTCString()}\r\n` +
    `Message-ID: <${newMessageId()}>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
    `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
    `--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n${ciphertext.toString('utf8').replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`
  );
}

async function deliver(envelope: string, to: string[], raw: string): Promise<{ id: string; state: string; reason: string; messages: RelayMessage[] }> {
  const mark = world.relay.messages.length;
  const id = await world.send(envelope, to, raw);
  const state = await world.waitForState(id, [...final]);
  const messages = await world.settle(mark);
  const row = world.daemon.daemon!.db.prepare('SELECT reason FROM spool WHERE id = ?').get(id) as { reason: string | null };
  return { id, state, reason: row.reason ?? '', messages };
}

describe('a signature is accepted once, across all lists', () => {
  it('refuses a signed-only public post replayed into the encrypted announce list under an attacker-chosen Subject', async () => {
    // The security team signs a note and posts it, signed only, to the public list: everyone on the wire sees it.
    const note = await buildPost(world, { from: world.security, to: publicAddress, subject: 'Note on our process', body: 'We will publish XSA-776 on Tuesday.', encryptTo: null });
    const published = await deliver(world.security.address, [publicAddress], note.raw);
    expect(published.state).toBe('done');

    // An outsider takes the multipart/signed entity as seen on the wire and wraps it in encryption to the announce list.
    const signed = note.raw.slice(note.raw.indexOf('Content-Type: multipart/signed'));
    const replay = await encryptedPost({
      list: announce,
      from: world.security.address,
      inner: `Subject: XSA-777: attacker-chosen subject\r\n${signed}`,
      encryptor: world.outsider,
      subject: 'XSA-777: attacker-chosen subject',
    });
    const refused = await deliver(world.outsider.address, [announceAddress], replay);
    expect(refused.state).toBe('rejected');
    expect(refused.reason).toMatch(new RegExp(`replay: same signature as the earlier post ${published.id} to ${publicList}`));
    expect(copiesOfPost(refused.messages, refused.id)).toEqual([]);
    for (const member of [world.vendorA, world.vendorB]) expect(toOf(refused.messages, member.address)).toEqual([]);
  });

  it('counts one SMTP transaction addressed to two lists once: both lists distribute it', async () => {
    const content = textEntity('Coordinated note for both lists.', `To: ${announceAddress}\r\nCc: ${discussionAddress}\r\nSubject: XSA-778 coordination\r\n`);
    const inner = await signedEntity(world.security, content);
    // One ciphertext readable by both list keys, as a client encrypting to two recipients writes it.
    const ciphertext = await world.security.gpg.encrypt(inner, { recipients: [world.listKeys[announce].fingerprint, world.listKeys[discussion].fingerprint] });
    const boundary = 'two-lists';
    const raw =
      `From: ${world.security.address}\r\nTo: ${announceAddress}\r\nCc: ${discussionAddress}\r\nSubject: ...\r\nMessage-ID: <${newMessageId()}>\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
      `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
      `--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n${ciphertext.toString('utf8').replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`;
    const result = await deliver(world.security.address, [announceAddress, discussionAddress], raw);
    expect(result.state).toBe('done');
    const copies = copiesOfPost(result.messages, result.id);
    expect(copies.some((copy) => headerOf(copy.raw, 'List-Id')?.includes(`<${announce}.${domain}>`))).toBe(true);
    expect(copies.some((copy) => headerOf(copy.raw, 'List-Id')?.includes(`<${discussion}.${domain}>`))).toBe(true);
  });
});

describe('a signature is accepted while it is fresh', () => {
  it(`refuses a valid but 4-day-old signature (signatures.maxAgeHours: 72), and says why`, async () => {
    const fourDaysAgo = new Date(Date.now() - 4 * 86_400_000);
    const inner = await signedEntity(veteran, textEntity('XSA-779: an advisory signed four days ago.', 'Subject: XSA-779 advisory\r\n'), fourDaysAgo);
    const old = await encryptedPost({ list: announce, from: veteran.address, inner, encryptor: veteran });
    const refused = await deliver(veteran.address, [announceAddress], old);
    expect(refused.state).toBe('rejected');
    expect(refused.reason).toMatch(/stale-signature: signed .* more than 72 hours before it arrived/);
    expect(copiesOfPost(refused.messages, refused.id)).toEqual([]);
    const bounce = toOf(refused.messages, veteran.address).find((message) => headerOf(message.raw, 'Auto-Submitted') === 'auto-replied');
    expect(bounce).toBeDefined();
    expect(bodyText(bounce!.raw)).toContain('more than 72 hours before it reached the list');

    // The same key signing now is accepted: only the age was the problem.
    const fresh = await signedEntity(veteran, textEntity('XSA-780: an advisory signed now.', 'Subject: XSA-780 advisory\r\n'));
    const accepted = await deliver(veteran.address, [announceAddress], await encryptedPost({ list: announce, from: veteran.address, inner: fresh, encryptor: veteran }));
    expect(accepted.state).toBe('done');
  });

  it('accepts a signature a few minutes in the future (clock skew) and refuses one an hour ahead', async () => {
    const skewed = await signedEntity(world.vendorA, textEntity('Clock two minutes fast.', 'Subject: skew\r\n'), new Date(Date.now() + 2 * 60_000));
    const ok = await deliver(world.vendorA.address, [discussionAddress], await encryptedPost({ list: discussion, from: world.vendorA.address, inner: skewed, encryptor: world.vendorA }));
    expect(ok.state).toBe('done');
    const ahead = await signedEntity(world.vendorA, textEntity('Clock an hour fast.', 'Subject: future\r\n'), new Date(Date.now() + 3_600_000));
    const refused = await deliver(world.vendorA.address, [discussionAddress], await encryptedPost({ list: discussion, from: world.vendorA.address, inner: ahead, encryptor: world.vendorA }));
    expect(refused.state).toBe('rejected');
    expect(copiesOfPost(refused.messages, refused.id)).toEqual([]);
  });
});

describe('a signature is accepted for the lists it names', () => {
  it('refuses a post whose signed To/Cc do not name the list, and says why', async () => {
    const content = textEntity('Meant for the announce list only.', `To: ${announceAddress}\r\nSubject: for another list\r\n`);
    const inner = await signedEntity(world.vendorA, content);
    const refused = await deliver(world.vendorA.address, [discussionAddress], await encryptedPost({ list: discussion, from: world.vendorA.address, inner, encryptor: world.vendorA }));
    expect(refused.state).toBe('rejected');
    expect(refused.reason).toMatch(/not-for-this-list/);
    const bounce = toOf(refused.messages, world.vendorA.address).find((message) => headerOf(message.raw, 'Auto-Submitted') === 'auto-replied');
    expect(bodyText(bounce!.raw)).toContain(`do not name ${discussionAddress}`);
  });
});

describe('what members are told is signed', () => {
  it('shows the signed Subject (protected header), not the outer one', async () => {
    const inner = await signedEntity(world.vendorA, textEntity('Signed subject inside.', `To: ${discussionAddress}\r\nSubject: The signed subject\r\n`));
    const result = await deliver(world.vendorA.address, [discussionAddress], await encryptedPost({ list: discussion, from: world.vendorA.address, inner, encryptor: world.vendorA, subject: 'An outer subject' }));
    expect(result.state).toBe('done');
    const copy = copiesOfPost(result.messages, result.id).find((message) => message.to.includes(world.vendorB.address))!;
    const plain = (await decryptCopy(world.vendorB, copy)).stdout.toString();
    expect(headerOf(plain, 'Subject')).toBe('The signed subject');
    expect(plain).not.toContain('An outer subject');
    expect(plain).not.toContain('not covered by the signature');
  });

  it('says in one line when the Subject is not covered by the signature (the attacker-chosen Subject case)', async () => {
    // Signed content without a Subject; the Subject sits inside the encryption but outside the signature.
    const signed = await signedEntity(world.vendorA, textEntity('Body signed, subject not.'));
    const result = await deliver(
      world.vendorA.address,
      [discussionAddress],
      await encryptedPost({ list: discussion, from: world.vendorA.address, inner: `Subject: An unsigned subject\r\n${signed}`, encryptor: world.vendorB }),
    );
    expect(result.state).toBe('done');
    const copy = copiesOfPost(result.messages, result.id).find((message) => message.to.includes(world.vendorB.address))!;
    const plain = (await decryptCopy(world.vendorB, copy)).stdout.toString();
    expect(headerOf(plain, 'Subject')).toBe('An unsigned subject');
    expect(plain).toContain('The Subject line is not covered by the signature.');
  });

  it('names the unsigned parts it dropped from an inline post', async () => {
    const armored = (await world.vendorA.gpg.encrypt('Inline body, signed and encrypted.\n', { recipients: [world.listKeys[discussion].fingerprint], signer: world.vendorA.fingerprint }))
      .toString('utf8')
      .replace(/\r?\n/g, '\r\n');
    const boundary = 'inline-mixed';
    const raw =
      `From: ${world.vendorA.address}\r\nTo: ${discussionAddress}\r\nSubject: inline\r\nMessage-ID: <${newMessageId()}>\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n` +
      `--${boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${armored}\r\n` +
      `--${boundary}\r\nContent-Type: application/octet-stream; name="unsigned-patch.diff"\r\nContent-Disposition: attachment; filename="unsigned-patch.diff"\r\n\r\nnot signed\r\n` +
      `--${boundary}--\r\n`;
    const result = await deliver(world.vendorA.address, [discussionAddress], raw);
    expect(result.state).toBe('done');
    const copy = copiesOfPost(result.messages, result.id).find((message) => message.to.includes(world.vendorB.address))!;
    const plain = (await decryptCopy(world.vendorB, copy)).stdout.toString();
    expect(plain).toContain('Inline body, signed and encrypted.');
    expect(plain).toMatch(/Left out, because neither the signature nor the encryption covers them: "unsigned-patch.diff" \(application\/octet-stream\)\./);
    expect(plain).not.toContain('not signed\r\n--');
  });
});
