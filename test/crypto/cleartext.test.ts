// Clearsigned text verified on its bytes (RFC 4880 7.1) in Latin-1, Windows-1252 and UTF-8, and inline text labelled with its real charset.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMessage, type ListKey, type OpenResult } from '../../src/crypto/index.ts';
import { readClearsigned } from '../../src/crypto/cleartext.ts';
import { createGpgMember, createListKey, type GpgMember } from './fixtures.ts';

let list: Awaited<ReturnType<typeof createListKey>>;
let listKey: ListKey;
let poster: GpgMember;

const texts = {
  'iso-8859-1': Buffer.from('Grüße aus Köln: Ausmaß groß.\n- a line that starts with a dash   \nend\n', 'latin1'),
  'windows-1252': Buffer.concat([Buffer.from('The \x93fix\x94 costs 5 \x80 \x96 ', 'latin1'), Buffer.from([0x85]), Buffer.from('\n')]),
  'utf-8': Buffer.from('Grüße, 東京, emoji 🔐\n', 'utf8'),
};

beforeAll(async () => {
  list = await createListKey();
  listKey = list.listKey;
  poster = await createGpgMember({ address: 'security@xen.example' }, [listKey.armoredPublicKey]);
});

afterAll(async () => {
  await poster?.gpg.cleanup();
  await list?.cleanup();
});

function open(raw: Buffer): Promise<OpenResult> {
  return openMessage(raw, { listKey, members: [{ address: poster.address, key: poster.memberKey }] });
}

function inlineMail(charset: string, body: Buffer): Buffer {
  const head = `From: ${poster.address}\r\nTo: list@lists.example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=${charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), body]);
}

describe('clearsigned text on its bytes', () => {
  for (const [charset, text] of Object.entries(texts)) {
    it(`${charset}: gpg's clearsignature verifies, in clear and clearsigned-then-encrypted`, async () => {
      const clearsigned = await poster.gpg.clearsign(text, poster.key.fingerprint);
      const plain = await open(inlineMail(charset, clearsigned));
      expect(plain.ok && plain.message.verification.valid, JSON.stringify(plain.ok && plain.message.verification)).toBe(true);
      const encrypted = await poster.gpg.encrypt(clearsigned, { recipients: [listKey.fingerprint] });
      const opened = await open(inlineMail(charset, encrypted));
      if (!opened.ok) throw new Error(opened.failure.detail);
      expect(opened.message.verification.valid).toBe(true);
      expect(opened.message.verification.memberAddress).toBe(poster.address);
      expect(opened.message.signatureCovers).toBe('entity');
      // The bytes are kept, and labelled with the charset they came in.
      expect(opened.message.entity.includes(text.subarray(0, 10))).toBe(true);
      expect(opened.message.entity.toString('latin1')).toMatch(new RegExp(`^Content-Type: text/plain; charset=${charset}\\r\\n`));
    });
  }

  it('a changed byte in the signed text is a bad signature', async () => {
    const clearsigned = Buffer.from(await poster.gpg.clearsign(texts['iso-8859-1'], poster.key.fingerprint));
    clearsigned[clearsigned.indexOf(0xfc)] = 0xf6; // ü -> ö
    const opened = await open(inlineMail('iso-8859-1', clearsigned));
    expect(opened.ok && opened.message.verification.valid).toBe(false);
  });

  it('undoes dash-escaping, drops trailing blanks and the framework line end (RFC 4880 7.1)', () => {
    const block = Buffer.from('-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n- -----not armor\ntrailing \t\n\n-----BEGIN PGP SIGNATURE-----\n\nxx\n-----END PGP SIGNATURE-----\n');
    expect(readClearsigned(block)?.signedText.toString()).toBe('-----not armor\r\ntrailing\r\n');
  });
});

describe('inline text charset label', () => {
  it('an armor Charset: header wins over the part\'s charset', async () => {
    const armored = (await poster.gpg.encrypt(texts['windows-1252'], { recipients: [listKey.fingerprint], signer: poster.key.fingerprint })).toString('latin1');
    const withHeader = armored.replace('-----BEGIN PGP MESSAGE-----\n', '-----BEGIN PGP MESSAGE-----\nCharset: windows-1252\n');
    const opened = await open(inlineMail('us-ascii', Buffer.from(withHeader, 'latin1')));
    if (!opened.ok) throw new Error(opened.failure.detail);
    expect(opened.message.verification.valid).toBe(true);
    expect(opened.message.charset).toBe('windows-1252');
    const body = opened.message.entity.subarray(opened.message.entity.indexOf('\r\n\r\n') + 4);
    // Byte for byte what the poster encrypted (0x93 0x94 0x80 0x96 0x85 are “ ” € – … in Windows-1252), now labelled so.
    expect(body.toString('latin1').replace(/\r\n/g, '\n')).toBe(texts['windows-1252'].toString('latin1'));
  });
});
