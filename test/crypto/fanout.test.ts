// Fan-out interop: every copy decrypts with gpg using only its recipient's key, names only that key, and carries a good list signature.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GENERIC_SUBJECT,
  assembleCopy,
  openMessage,
  parseMemberKey,
  sealFanout,
  type ListKey,
  type SealInput,
} from '../../src/crypto/index.ts';
import { armorMessage, copyFraming, readPacket, sharedFraming, SEIPD_TAG_OCTET } from '../../src/crypto/armor.ts';
import { encryptionPacketOf } from '../../src/crypto/member-keys.ts';
import { readFile } from 'node:fs/promises';
import { boundaryOf, createGpgMember, createListKey, importGpgMember, partsOf, type GpgMember } from './fixtures.ts';
import { listKeyFile } from '../../src/crypto/index.ts';

let list: Awaited<ReturnType<typeof createListKey>>;
let rsaList: Awaited<ReturnType<typeof createListKey>>;
let listKey: ListKey;
let poster: GpgMember;
let members: GpgMember[];
let clearsignedContent: Buffer;

const SUBJECT = '[Xen-security-issues] XSA-999: embargoed advisory (test)';

function inputFor(content: Buffer, recipients: GpgMember[]): SealInput {
  return {
    listKey,
    content,
    protectedHeaders: [
      ['Subject', SUBJECT],
      ['From', 'Security Team <security@xen.example>'],
      ['To', 'xen-security-issues@lists.example.org'],
      ['Date', 'Thu, 26 Nov 2026 14:00:00 +0000'],
      ['Message-ID', '<xsa-999@xen.example>'],
    ],
    note: 'Signed by security@xen.example (key 0123), received encrypted. The list re-signed this copy.',
    outerHeaders: [
      ['From', 'xen-security-issues@lists.example.org'],
      ['To', 'xen-security-issues@lists.example.org'],
      ['Subject', SUBJECT],
      ['Date', 'Thu, 26 Nov 2026 14:00:01 +0000'],
      ['Message-ID', '<embargo-1@lists.example.org>'],
      ['List-Id', '<xen-security-issues.lists.example.org>'],
    ],
    recipients: recipients.map((member) => ({ address: member.address, key: member.memberKey })),
  };
}

beforeAll(async () => {
  list = await createListKey();
  listKey = list.listKey;
  poster = await createGpgMember({ address: 'security@xen.example' });
  // The one RSA-4096 key of this run doubles as the test of ensureListKey's rsa4096 option: GnuPG 2.2 must read it.
  rsaList = await createListKey('security', 'rsa4096.example', 'rsa4096');
  const rsaSecret = await readFile(listKeyFile(rsaList.dataDir, 'security'), 'utf8');
  members = await Promise.all([
    createGpgMember({ address: 'security@curve.example' }, [listKey.armoredPublicKey, poster.armoredPublic]),
    createGpgMember({ address: 'security@rsa3072.example', algorithm: 'rsa3072' }, [listKey.armoredPublicKey, poster.armoredPublic]),
    importGpgMember('security@rsa4096.example', rsaSecret, [listKey.armoredPublicKey, poster.armoredPublic]),
  ]);
  expect(members[2].memberKey.algorithm).toBe('rsa4096');
  const advisory = 'Xen Security Advisory XSA-999\n\n- leading dash line\nFrom the start of a line\n\nISSUE DESCRIPTION\n=================\n\nTest only.\n';
  const signed = (await poster.gpg.clearsign(advisory, poster.key.fingerprint)).toString('utf8').replace(/\r?\n/g, '\r\n');
  clearsignedContent = Buffer.from(`Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${signed}`);
}, 180_000);

afterAll(async () => {
  await Promise.all([poster, ...members].map((member) => member?.gpg.cleanup()));
  await list?.cleanup();
  await rsaList?.cleanup();
});

describe('sealFanout', () => {
  it('gives each recipient (Curve25519, RSA-3072, RSA-4096) a copy only their own key opens, list-signed, one PKESK', async () => {
    const fanout = await sealFanout(inputFor(clearsignedContent, members));
    expect(fanout.copies.map((copy) => copy.address)).toEqual(members.map((member) => member.address));
    for (const [index, member] of members.entries()) {
      const copy = assembleCopy(fanout, fanout.copies[index]);
      const text = copy.toString('latin1');
      expect(text).toMatch(new RegExp(`^Subject: ${GENERIC_SUBJECT}\\r$`, 'm'));
      expect(text).not.toContain('XSA-999');
      expect(text).toContain('Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"');
      const armored = partsOf(text, boundaryOf(text))[1].split('\r\n\r\n').slice(1).join('\r\n\r\n');

      const packets = await member.gpg.listPackets(armored);
      const pkesks = packets.split('\n').filter((line) => line.startsWith(':pubkey enc packet:'));
      expect(pkesks).toHaveLength(1);
      expect(pkesks[0].toUpperCase()).toContain(member.key.encryptionSubkey!.slice(-16));

      const result = await member.gpg.decrypt(armored);
      expect(result.code, result.stderr).toBe(0);
      expect(result.has('DECRYPTION_OKAY')).toBe(true);
      expect(result.has('GOODMDC')).toBe(true);
      expect(result.has('GOODSIG')).toBe(true);
      expect(result.args('VALIDSIG')?.at(-1)).toBe(listKey.fingerprint);

      // Protected headers inside, the note, then the poster's entity byte for byte.
      const inner = result.stdout.toString('latin1');
      expect(inner).toMatch(/^Content-Type: multipart\/mixed; protected-headers="v1";\r\n boundary="[^"]+"\r\n/);
      expect(inner).toContain(`Subject: ${SUBJECT}\r\n`);
      expect(inner).toContain('Message-ID: <xsa-999@xen.example>\r\n');
      const innerParts = partsOf(inner, boundaryOf(inner));
      expect(innerParts[0]).toContain('The list re-signed this copy.');
      expect(innerParts[1]).toBe(clearsignedContent.toString('latin1'));

      // The author's clearsignature still verifies after the list re-encrypted the post.
      const clearsigned = innerParts[1].split('\r\n\r\n').slice(1).join('\r\n\r\n');
      const verified = await member.gpg.verify(clearsigned);
      expect(verified.code, verified.stderr).toBe(0);
      expect(verified.args('VALIDSIG')?.at(-1)).toBe(poster.key.fingerprint);

      // Any other recipient's key cannot open this copy.
      const other = members[(index + 1) % members.length];
      const refused = await other.gpg.decrypt(armored);
      expect(refused.code).not.toBe(0);
      expect(refused.has('DECRYPTION_OKAY')).toBe(false);
      expect(refused.stdout.length).toBe(0);
    }
  });

  it('shares one armored payload across copies, at sizes that need several partial chunks', async () => {
    const body = randomBytes(1_600_000).toString('base64').replace(/.{76}/g, '$&\r\n');
    const content = Buffer.from(`Content-Type: text/plain; charset=us-ascii\r\n\r\n${body}`);
    const fanout = await sealFanout(inputFor(content, members));
    expect(fanout.payload.length).toBeGreaterThan(content.length);
    for (const copy of fanout.copies) expect(copy.head.length).toBeLessThan(4096);
    const member = members[1];
    const message = assembleCopy(fanout, fanout.copies[1]).toString('latin1');
    const armored = partsOf(message, boundaryOf(message))[1].split('\r\n\r\n').slice(1).join('\r\n\r\n');
    const result = await member.gpg.decrypt(armored);
    expect(result.code, result.stderr).toBe(0);
    expect(result.args('VALIDSIG')?.at(-1)).toBe(listKey.fingerprint);
    const innerParts = partsOf(result.stdout.toString('latin1'), boundaryOf(result.stdout.toString('latin1')));
    expect(Buffer.from(innerParts[1], 'latin1').equals(content)).toBe(true);
  });

  it('GnuPG accepts every per-copy framing (2, 3 or 4 partial-length octets before the shared part)', async () => {
    const fanout = await sealFanout(inputFor(Buffer.concat([clearsignedContent, Buffer.alloc(5000, 0x42)]), members.slice(0, 1)));
    const message = assembleCopy(fanout, fanout.copies[0]).toString('latin1');
    const armored = partsOf(message, boundaryOf(message))[1];
    const base64 = armored.slice(armored.indexOf('\r\n\r\n', armored.indexOf('-----BEGIN')) + 4, armored.indexOf('\r\n=')).replace(/\s+/g, '');
    const binary = Buffer.from(base64, 'base64');
    const pkesk = readPacket(binary);
    expect(pkesk.tag).toBe(1);
    const seipd = readPacket(binary, pkesk.end);
    expect(seipd.tag).toBe(18);
    for (const octets of [2, 3, 4] as const) {
      const reframed = Buffer.concat([
        binary.subarray(0, pkesk.end),
        Buffer.from([SEIPD_TAG_OCTET]),
        copyFraming(seipd.body, octets),
        sharedFraming(seipd.body.subarray(516)),
      ]);
      const result = await members[0].gpg.decrypt(armorMessage(reframed));
      expect(result.code, result.stderr).toBe(0);
      expect(result.args('VALIDSIG')?.at(-1)).toBe(listKey.fingerprint);
    }
  });

  it('the node:crypto Curve25519 wrap and openpgp.js\'s own produce equivalent PKESKs that gpg opens', async () => {
    const member = members[0];
    expect((await encryptionPacketOf(member.memberKey)).curve25519).toBeDefined();
    expect((await encryptionPacketOf(members[1].memberKey)).curve25519).toBeUndefined();
    for (const curve25519Wrap of ['node', 'openpgp'] as const) {
      const fanout = await sealFanout(inputFor(clearsignedContent, [member]), { curve25519Wrap });
      const message = assembleCopy(fanout, fanout.copies[0]).toString('latin1');
      const armored = partsOf(message, boundaryOf(message))[1].split('\r\n\r\n').slice(1).join('\r\n\r\n');
      const packets = await member.gpg.listPackets(armored);
      expect(packets).toMatch(/# off=0 ctb=c1 tag=1 hlen=2 plen=94 new-ctb/);
      const result = await member.gpg.decrypt(armored);
      expect(result.code, result.stderr).toBe(0);
      expect(result.has('GOODSIG')).toBe(true);
    }
  });

  it('a tiny message (below the sharing threshold) is armored whole per copy and still opens in gpg', async () => {
    const input = inputFor(Buffer.from('Content-Type: text/plain\r\n\r\nhi\r\n'), members.slice(0, 1));
    input.protectedHeaders = [['Subject', 'x']];
    input.note = 'n';
    const fanout = await sealFanout(input);
    expect(fanout.payload.length).toBe(0);
    const message = assembleCopy(fanout, fanout.copies[0]).toString('latin1');
    const armored = partsOf(message, boundaryOf(message))[1].split('\r\n\r\n').slice(1).join('\r\n\r\n');
    const result = await members[0].gpg.decrypt(armored);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString('latin1')).toContain('\r\n\r\nhi\r\n');
  });

  it('uses a fresh session key for every message', async () => {
    const first = await sealFanout(inputFor(clearsignedContent, members.slice(0, 1)));
    const second = await sealFanout(inputFor(clearsignedContent, members.slice(0, 1)));
    expect(first.payload.equals(second.payload)).toBe(false);
    expect(first.copies[0].head.subarray(-200).equals(second.copies[0].head.subarray(-200))).toBe(false);
  });

  it('is read by openpgp.js too (a copy sealed to the list key opens with openMessage and verifies)', async () => {
    const self = await parseMemberKey(listKey.armoredPublicKey);
    const input = inputFor(Buffer.concat([clearsignedContent, Buffer.alloc(3000, 0x41)]), []);
    input.recipients = [{ address: 'xen-security-issues@lists.example.org', key: self }];
    const fanout = await sealFanout(input);
    const opened = await openMessage(assembleCopy(fanout, fanout.copies[0]), {
      listKey,
      members: [{ address: 'xen-security-issues@lists.example.org', key: self }],
    });
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    expect(opened.message.encrypted).toBe(true);
    expect(opened.message.verification.valid).toBe(true);
    expect(opened.message.verification.signingFingerprint).toBe(listKey.fingerprint);
    expect(opened.message.protectedHeaders.Subject).toBe(SUBJECT);
  });

  it('the naive per-recipient path produces copies gpg opens as well', async () => {
    const fanout = await sealFanout(inputFor(clearsignedContent, members.slice(0, 2)), { strategy: 'per-recipient' });
    expect(fanout.payload.length).toBe(0);
    const member = members[1];
    const message = assembleCopy(fanout, fanout.copies[1]).toString('latin1');
    const armored = partsOf(message, boundaryOf(message))[1].split('\r\n\r\n').slice(1).join('\r\n\r\n');
    const result = await member.gpg.decrypt(armored);
    expect(result.code, result.stderr).toBe(0);
    expect(result.args('VALIDSIG')?.at(-1)).toBe(listKey.fingerprint);
  });
});
