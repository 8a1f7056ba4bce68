// Invariant 2 (threats against signed posts): a stripped signature, a replayed signature or Message-ID, a key substituted through an attached key, an unsigned HTML twin of a signed text.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPost, copiesOfPost, decryptCopy, discussion, domain, headerOf, newMessageId, person, startListWorld } from '../helpers/lists.ts';
import type { ListWorld, Person } from '../helpers/lists.ts';
import type { RelayMessage } from '../helpers/relay.ts';

let world: ListWorld;
let impostor: Person;
const listAddress = `${discussion}@${domain}`;
const final = ['done', 'rejected', 'held', 'discarded', 'shunted'] as const;

beforeAll(async () => {
  world = await startListWorld();
  // Someone who made a key carrying vendor B's address (anyone can).
  impostor = await person(world.vendorB.address, 'Vendor B PSIRT (not really)');
  await impostor.gpg.importKey(world.listKeys[discussion].armored);
});

afterAll(async () => {
  await world?.stop();
  await impostor?.gpg.cleanup();
});

const textEntity = (body: string) => `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}\r\n`;

/** A PGP/MIME post around an inner entity, encrypted to the list by `encryptor` (optionally signed by `signer` at the OpenPGP level). */
async function encryptedPost(options: { from: string; inner: string; encryptor: Person; signer?: Person; messageId?: string; subject?: string }): Promise<{ raw: string; messageId: string }> {
  const messageId = options.messageId ?? newMessageId();
  const ciphertext = await options.encryptor.gpg.encrypt(options.inner, {
    recipients: [world.listKeys[discussion].fingerprint],
    ...(options.signer ? { signer: options.signer.fingerprint } : {}),
  });
  const boundary = `enc-${Math.random().toString(36).slice(2)}`;
  return {
    messageId,
    raw:
      `From: ${options.from}\r\nTo: ${listAddress}\r\nSubject: ${options.subject ?? '...'}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${messageId}>\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
      `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
      `--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n${ciphertext.toString('utf8').replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`,
  };
}

/** A detached-signed entity (RFC 3156 multipart/signed) by `signer`, as the inner part of a signed-then-encrypted post. */
async function signedEntity(signer: Person, body: string): Promise<{ signed: string; content: string; signature: string }> {
  const content = textEntity(body);
  const signature = (await signer.gpg.detachSign(content, signer.fingerprint, ['--digest-algo', 'SHA256'])).toString('utf8').replace(/\r?\n/g, '\r\n');
  const boundary = `sig-${Math.random().toString(36).slice(2)}`;
  const signed =
    `Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="${boundary}"\r\n\r\n` +
    `--${boundary}\r\n${content}\r\n--${boundary}\r\nContent-Type: application/pgp-signature; name="signature.asc"\r\n\r\n${signature}\r\n--${boundary}--\r\n`;
  return { signed, content, signature };
}

async function deliver(raw: string, envelope: string): Promise<{ id: string; state: string; reason: string; copies: RelayMessage[] }> {
  const mark = world.relay.messages.length;
  const id = await world.send(envelope, [listAddress], raw);
  const state = await world.waitForState(id, [...final]);
  const after = await world.settle(mark);
  const row = world.daemon.daemon!.db.prepare('SELECT reason FROM spool WHERE id = ?').get(id) as { reason: string | null };
  // Copies of the post itself (bounces and admin notices carry their own Message-IDs).
  return { id, state, reason: row.reason ?? '', copies: copiesOfPost(after, id) };
}

describe('a stripped signature', () => {
  it('refuses a signed post whose signature was removed or emptied before it was encrypted to the list', async () => {
    const { signed, content } = await signedEntity(world.vendorA, 'Patch for XSA-1000 attached. Signed by vendor A.');
    const boundary = /boundary="([^"]+)"/.exec(signed)![1];
    const withoutSignaturePart = signed.replace(new RegExp(`--${boundary}\\r\\nContent-Type: application/pgp-signature[\\s\\S]*?(?=--${boundary}--)`), '');
    const emptySignature = signed.replace(/-----BEGIN PGP SIGNATURE-----[\s\S]*?-----END PGP SIGNATURE-----/, '');
    const cases = {
      'multipart/signed without its signature part': withoutSignaturePart,
      'the signed content alone, wrapper and signature gone': content,
      'an empty signature part': emptySignature,
    };
    for (const [what, inner] of Object.entries(cases)) {
      // Whoever stripped it re-encrypts to the list's public key, which anyone can get.
      const post = await encryptedPost({ from: world.vendorA.address, inner, encryptor: world.outsider });
      const result = await deliver(post.raw, world.vendorA.address);
      expect(result.state, what).toBe('rejected');
      expect(result.reason, what).toMatch(/bad-input|unsigned|bad-signature/);
      expect(result.copies, what).toEqual([]);
    }
  });
});

describe('a replayed signed post', () => {
  it('refuses the same signature again (re-encrypted, new Message-ID) and the same Message-ID again (new signature)', async () => {
    const { signed } = await signedEntity(world.vendorA, 'Embargo for XSA-1001 ends on Tuesday.');
    const original = await encryptedPost({ from: world.vendorA.address, inner: signed, encryptor: world.vendorA });
    const first = await deliver(original.raw, world.vendorA.address);
    expect(first.state).toBe('done');
    expect(first.copies.length).toBeGreaterThan(0);

    // Someone who kept the signed entity sends it again later: fresh ciphertext, fresh Message-ID.
    const replayed = await encryptedPost({ from: world.vendorA.address, inner: signed, encryptor: world.outsider });
    const second = await deliver(replayed.raw, world.vendorA.address);
    expect(second.state).toBe('rejected');
    expect(second.reason).toMatch(/replay: same signature/);
    expect(second.copies).toEqual([]);

    // A new, validly signed post that reuses the earlier Message-ID.
    const { signed: fresh } = await signedEntity(world.vendorA, 'Embargo for XSA-1001 ends on Wednesday (changed).');
    const sameId = await encryptedPost({ from: world.vendorA.address, inner: fresh, encryptor: world.vendorA, messageId: original.messageId });
    const third = await deliver(sameId.raw, world.vendorA.address);
    expect(third.state).toBe('rejected');
    expect(third.reason).toMatch(/replay: same message-id/);

    // The very same bytes again (a sender's retransmission) are dropped quietly: no copies, no bounce.
    const mark = world.relay.messages.length;
    const again = await world.send(world.vendorA.address, [listAddress], original.raw);
    expect(await world.waitForState(again, [...final])).toBe('discarded');
    expect(await world.settle(mark)).toEqual([]);
  });
});

describe('key substitution through an attached key', () => {
  it("refuses a post under a member's From signed by a key it carries, and keeps using the registered key", async () => {
    const boundary = 'mixed-key';
    const inner =
      `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n` +
      `--${boundary}\r\n${textEntity('Vendor B here: our key changed, use the attached one from now on.')}\r\n` +
      `--${boundary}\r\nContent-Type: application/pgp-keys; name="new-key.asc"\r\nContent-Disposition: attachment; filename="new-key.asc"\r\n\r\n${impostor.armored.replace(/\r?\n/g, '\r\n')}\r\n` +
      `--${boundary}--\r\n`;
    const registeredBefore = readFileSync(join(world.daemon.config.configDir, 'keys/vendor-b.asc'), 'utf8');
    const post = await encryptedPost({ from: world.vendorB.address, inner, encryptor: impostor, signer: impostor });
    const refused = await deliver(post.raw, world.vendorB.address);
    expect(refused.state).toBe('rejected');
    expect(refused.reason).toMatch(/bad-signature/);
    expect(refused.copies).toEqual([]);
    // The same key sent as a command to -request@ changes nothing either.
    const request = `From: ${world.vendorB.address}\r\nTo: ${discussion}-request@${domain}\r\nSubject: new key\r\nMessage-ID: <${newMessageId()}>\r\n\r\n${impostor.armored}`;
    await world.send(world.vendorB.address, [`${discussion}-request@${domain}`], request);

    // The registered key is unchanged, and the next post reaches vendor B encrypted to that key only.
    expect(readFileSync(join(world.daemon.config.configDir, 'keys/vendor-b.asc'), 'utf8')).toBe(registeredBefore);
    const next = await buildPost(world, { from: world.vendorA, to: listAddress, subject: 'after the attempt', body: 'for vendor B' });
    const delivered = await deliver(next.raw, world.vendorA.address);
    expect(delivered.state).toBe('done');
    const toB = delivered.copies.find((copy) => copy.to.includes(world.vendorB.address))!;
    expect((await decryptCopy(world.vendorB, toB)).code).toBe(0);
    expect((await decryptCopy(impostor, toB)).code).not.toBe(0);
    // A genuine post by vendor B, signed with the registered key, still goes through.
    const genuine = await buildPost(world, { from: world.vendorB, to: listAddress, subject: 'really B', body: 'no key change' });
    expect((await deliver(genuine.raw, world.vendorB.address)).state).toBe('done');
  });
});

describe('an unsigned HTML twin of a signed text', () => {
  it('refuses a post whose inline signature covers only the text part of a multipart/alternative (or of an attachment set)', async () => {
    const clearsigned = (await world.vendorA.gpg.clearsign('Apply the patch from the advisory page only.\n', world.vendorA.fingerprint)).toString('utf8');
    const twin = (second: string) =>
      'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n' +
      `--alt\r\n${textEntity(clearsigned)}\r\n--alt\r\n${second}\r\n--alt--\r\n`;
    const cases = {
      'HTML that says something else': twin('Content-Type: text/html; charset=utf-8\r\n\r\n<p>Apply the patch from <a href="https://attacker.example/p">here</a>.</p>\r\n'),
      'an unsigned attachment beside the signed text':
        'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n' +
        `--mix\r\n${textEntity(clearsigned)}\r\n--mix\r\nContent-Type: application/octet-stream; name="fix.patch"\r\n\r\nrm -rf /\r\n--mix--\r\n`,
    };
    for (const [what, inner] of Object.entries(cases)) {
      const post = await encryptedPost({ from: world.vendorA.address, inner, encryptor: world.vendorA });
      const result = await deliver(post.raw, world.vendorA.address);
      expect(result.state, what).toBe('rejected');
      expect(result.reason, what).toMatch(/uncovered-attachment: (the inline signature covers one text part only|no digest in the signed text for attachment 1 of 1)/);
      expect(result.copies, what).toEqual([]);
    }
    // The same clearsigned text alone is a good post.
    const alone = await encryptedPost({ from: world.vendorA.address, inner: textEntity(clearsigned), encryptor: world.vendorA });
    expect((await deliver(alone.raw, world.vendorA.address)).state).toBe('done');
  });
});
