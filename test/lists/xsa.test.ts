// End to end: Xen Security Advisories as the Xen team sends them (clearsigned text, patches checksummed in it) and 8-bit inline PGP, checked by gpg and Sequoia.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announce, armoredPart, bodyText, copiesOfPost, decryptCopy, domain, headerOf, newMessageId, startListWorld } from '../helpers/lists.ts';
import type { ListWorld, Person } from '../helpers/lists.ts';
import type { RelayMessage } from '../helpers/relay.ts';
import { sqDecryptAndVerify } from '../helpers/sq.ts';

let world: ListWorld;
const listAddress = `${announce}@${domain}`;
const patches = {
  'xsa999-4.19.patch': Buffer.from('From: Xen Security Team\nSubject: x86: fix the thing\n\n--- a/xen/arch/x86/mm.c\n+++ b/xen/arch/x86/mm.c\n@@ -1 +1 @@\n-    return 0;\n+    return -EINVAL;\n'),
  'xsa999-4.18.patch': Buffer.concat([Buffer.from('binary-ish patch with bytes the transfer encoding must keep: '), Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0d, 0x0a, 0x0a])]),
};

beforeAll(async () => {
  world = await startListWorld();
  // Members check the advisory's own signature, so they have the security team's key (as real members do).
  for (const member of [world.vendorA, world.vendorB]) await member.gpg.importKey(world.security.armored);
});

afterAll(async () => {
  await world?.stop();
});

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The advisory text as `sha256sum` would list the patches in it, clearsigned by the security team with gpg. */
/** Numbers each advisory's text: two identical texts signed in the same second give the same signature, which replay protection rightly refuses. */
let draft = 0;

async function clearsignedAdvisory(files: Record<string, Buffer>): Promise<Buffer> {
  const sums = Object.entries(files).map(([name, bytes]) => `${sha256(bytes)}  ${name}`).join('\n');
  const text = `Xen Security Advisory XSA-999 version ${++draft}\n\n   x86: the thing is broken\n\nPATCHES\n=======\n\n$ sha256sum xsa999*\n${sums}\n$\n`;
  return world.security.gpg.clearsign(text, world.security.fingerprint);
}

function header(messageId: string): string {
  return `From: Xen Security Team <${world.security.address}>\r\nTo: ${listAddress}\r\nSubject: Encrypted message\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${messageId}>\r\nMIME-Version: 1.0\r\n`;
}

function base64Part(name: string, bytes: Buffer, type = 'application/octet-stream'): string {
  return `Content-Type: ${type}; name="${name}"\r\nContent-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${bytes.toString('base64').replace(/.{1,76}/g, '$&\r\n')}`;
}

/** PGP/MIME encrypted to the list key, with no signature outside: the clearsigned text and the patches inside. */
async function pgpMimeAdvisory(files: Record<string, Buffer>, sent: Record<string, Buffer> = files): Promise<{ raw: string; messageId: string }> {
  const clearsigned = await clearsignedAdvisory(files);
  const inner =
    'Content-Type: multipart/mixed; boundary="xsa"\r\n\r\n' +
    `--xsa\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${clearsigned.toString('latin1').replace(/\r?\n/g, '\r\n')}\r\n` +
    Object.entries(sent).map(([name, bytes]) => `--xsa\r\n${base64Part(name, bytes)}\r\n`).join('') +
    '--xsa--\r\n';
  const ciphertext = await world.security.gpg.encrypt(inner, { recipients: [world.listKeys[announce].fingerprint] });
  const messageId = newMessageId();
  const raw =
    header(messageId) +
    'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="enc"\r\n\r\n' +
    '--enc\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
    `--enc\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n${ciphertext.toString('latin1').replace(/\r?\n/g, '\r\n')}\r\n--enc--\r\n`;
  return { raw, messageId };
}

/** Inline PGP as gpg users and Enigmail send it: the encrypted clearsigned text in the body, each patch encrypted on its own as NAME.pgp. */
async function inlineAdvisory(files: Record<string, Buffer>): Promise<{ raw: string; messageId: string }> {
  const clearsigned = await clearsignedAdvisory(files);
  const recipients = [world.listKeys[announce].fingerprint];
  const text = await world.security.gpg.encrypt(clearsigned, { recipients });
  const attachments: string[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    const encrypted = await world.security.gpg.encrypt(bytes, { recipients, armor: false });
    attachments.push(`--mix\r\n${base64Part(`${name}.pgp`, encrypted)}\r\n`);
  }
  const messageId = newMessageId();
  const raw =
    header(messageId) +
    'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n' +
    `--mix\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${text.toString('latin1').replace(/\r?\n/g, '\r\n')}\r\n` +
    attachments.join('') +
    '--mix--\r\n';
  return { raw, messageId };
}

async function post(raw: string, expected: 'done' | 'rejected'): Promise<{ id: string; messages: RelayMessage[] }> {
  const mark = world.relay.messages.length;
  const id = await world.send(world.security.address, [listAddress], raw);
  expect(await world.waitForState(id, ['done', 'rejected', 'held', 'shunted', 'discarded'])).toBe(expected);
  return { id, messages: await world.settle(mark) };
}

const members = () => [world.security, world.vendorA, world.vendorB];

/** The base64 attachment called `name` in a decrypted copy, decoded. */
function attachment(plain: string, name: string): Buffer {
  const match = new RegExp(`filename="${name.replace(/\./g, '\\.')}"\\r?\\n(?:[^\\r\\n]+\\r?\\n)*?\\r?\\n([A-Za-z0-9+/=\\r\\n]+)`).exec(plain);
  if (!match) throw new Error(`no attachment ${name} in the copy`);
  return Buffer.from(match[1].replace(/\s/g, ''), 'base64');
}

function clearsignedBlock(plain: Buffer): Buffer {
  const text = plain.toString('latin1');
  const start = text.indexOf('-----BEGIN PGP SIGNED MESSAGE-----');
  const end = text.indexOf('-----END PGP SIGNATURE-----') + '-----END PGP SIGNATURE-----'.length;
  expect(start).toBeGreaterThanOrEqual(0);
  return Buffer.from(text.slice(start, end) + '\n', 'latin1');
}

async function expectDelivered(messages: RelayMessage[], spoolId: string, check: (member: Person, plain: Buffer) => Promise<void>): Promise<void> {
  const copies = copiesOfPost(messages, spoolId);
  expect(copies.flatMap((message) => message.to).sort()).toEqual(members().map((member) => member.address).sort());
  for (const member of members()) {
    const copy = copies.find((message) => message.to.includes(member.address))!;
    const opened = await decryptCopy(member, copy);
    expect(opened.has('DECRYPTION_OKAY')).toBe(true);
    expect(opened.args('VALIDSIG')?.at(-1)).toBe(world.listKeys[announce].fingerprint);
    await check(member, opened.stdout);
  }
}

describe('XSA-shaped advisories', () => {
  it('PGP/MIME encrypted with no outer signature: every member gets it; the text verifies with gpg and the patches are byte-identical', async () => {
    const { raw } = await pgpMimeAdvisory(patches);
    const { id, messages } = await post(raw, 'done');
    await expectDelivered(messages, id, async (member, plain) => {
      const verified = await member.gpg.verify(clearsignedBlock(plain));
      expect(verified.args('VALIDSIG')?.at(-1)).toBe(world.security.fingerprint);
      for (const [name, bytes] of Object.entries(patches)) expect(attachment(plain.toString('latin1'), name).equals(bytes)).toBe(true);
      for (const name of Object.keys(patches)) expect(plain.toString()).toContain(`Attachment ${name}: covered by a checksum in the signed text`);
    });
    // Sequoia reads the same copies and accepts the list's signature.
    const copy = copiesOfPost(messages, id).find((message) => message.to.includes(world.vendorA.address))!;
    const sq = await sqDecryptAndVerify(armoredPart(copy.raw), await world.vendorA.gpg.exportSecret(world.vendorA.fingerprint), world.listKeys[announce].armored);
    expect(sq.code, sq.stderr).toBe(0);
    expect(sq.stdout.toString()).toContain('Xen Security Advisory XSA-999');
  });

  it('the same with one patch altered after it was checksummed: refused, the bounce names that patch, no member gets anything', async () => {
    const altered = { ...patches, 'xsa999-4.18.patch': Buffer.concat([patches['xsa999-4.18.patch'], Buffer.from('+ backdoor\n')]) };
    const { raw } = await pgpMimeAdvisory(patches, altered);
    const { id, messages } = await post(raw, 'rejected');
    expect(copiesOfPost(messages, id)).toHaveLength(0);
    const bounce = messages.find((message) => message.to.includes(world.security.address) && headerOf(message.raw, 'Auto-Submitted') === 'auto-replied')!;
    const text = bodyText(bounce.raw);
    expect(text).toContain('Not all of it is covered by its signature');
    expect(text).toContain(`attachment 2 of 2 (${altered['xsa999-4.18.patch'].length} bytes, SHA-256 ${sha256(altered['xsa999-4.18.patch'])})`);
    expect(text).not.toContain('attachment 1 of 2');
    // The bounce travels in clear: it names the patch by position and digest, not by its (telling) file name.
    expect(bounce.raw.toString()).not.toContain('xsa999-4.18.patch');
    expect(text).toContain(`Reference: ${id}`);
  });

  it('inline-encrypted (encrypted clearsigned text, each patch encrypted on its own): every member gets the text and the patches', async () => {
    const { raw } = await inlineAdvisory(patches);
    const { id, messages } = await post(raw, 'done');
    await expectDelivered(messages, id, async (member, plain) => {
      expect((await member.gpg.verify(clearsignedBlock(plain))).args('VALIDSIG')?.at(-1)).toBe(world.security.fingerprint);
      for (const [name, bytes] of Object.entries(patches)) expect(attachment(plain.toString('latin1'), name).equals(bytes)).toBe(true);
    });
  });
});

describe('8-bit inline PGP', () => {
  const latin1 = Buffer.from('XSA-998: Grüße aus Köln.\nDer Fehler betrifft café-Systeme; Ausmaß: groß.\n', 'latin1');

  function inlinePost(armored: Buffer, messageId: string): string {
    return `${header(messageId)}Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${armored.toString('latin1').replace(/\r?\n/g, '\r\n')}\r\n`;
  }

  it('a Latin-1 text clearsigned, then encrypted, as gpg makes it: reaches the members and still verifies there', async () => {
    const clearsigned = await world.security.gpg.clearsign(latin1, world.security.fingerprint);
    expect(clearsigned.includes(Buffer.from('Grüße', 'latin1'))).toBe(true);
    const armored = await world.security.gpg.encrypt(clearsigned, { recipients: [world.listKeys[announce].fingerprint] });
    const messageId = newMessageId();
    const { id, messages } = await post(inlinePost(armored, messageId), 'done');
    await expectDelivered(messages, id, async (member, plain) => {
      const block = clearsignedBlock(plain);
      expect(block.includes(Buffer.from('Grüße aus Köln', 'latin1'))).toBe(true);
      const verified = await member.gpg.verify(block);
      expect(verified.has('GOODSIG')).toBe(true);
      expect(verified.args('VALIDSIG')?.at(-1)).toBe(world.security.fingerprint);
    });
  });

  it('a Latin-1 gpg -sea post: the members\' text decodes to the original under its declared charset', async () => {
    const armored = await world.security.gpg.encrypt(latin1, { recipients: [world.listKeys[announce].fingerprint], signer: world.security.fingerprint, textmode: true });
    const messageId = newMessageId();
    const { id, messages } = await post(inlinePost(armored, messageId), 'done');
    await expectDelivered(messages, id, async (_member, plain) => {
      const text = plain.toString('latin1');
      const declared = /Content-Type: text\/plain; charset=([^\s;]+)\r?\nContent-Transfer-Encoding: 8bit\r?\n\r?\n(XSA-998[^]*?)(?:\r?\n--|$)/.exec(text);
      expect(declared, 'the poster\'s text part').not.toBeNull();
      expect(declared![1].toLowerCase()).toBe('iso-8859-1');
      const decoded = new TextDecoder(declared![1]).decode(Buffer.from(declared![2], 'latin1'));
      expect(decoded.replace(/\r\n/g, '\n')).toContain('XSA-998: Grüße aus Köln.\nDer Fehler betrifft café-Systeme; Ausmaß: groß.');
    });
  });
});
