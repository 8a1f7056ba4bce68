// openMessage against mail made by real gpg in every form clients send, and the failures it must report as values.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMemberKey, openMessage, parseMemberKey, type ListKey, type MemberKey, type OpenResult } from '../../src/crypto/index.ts';
import { createGpgMember, createListKey, type GpgMember } from './fixtures.ts';

let list: Awaited<ReturnType<typeof createListKey>>;
let listKey: ListKey;
let poster: GpgMember;
let stranger: GpgMember;
let expired: GpgMember;
let revoked: GpgMember;
let revokedKey: MemberKey;
let expiredSignedMessage: Buffer;
let revokedSignedMessage: Buffer;

const LIST = 'xen-security-issues@lists.example.org';
const INNER = 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nEmbargoed fix attached. Grüße.\r\n';

function members(): Array<{ address: string; key: MemberKey }> {
  return [
    { address: poster.address, key: poster.memberKey },
    { address: expired.address, key: expired.memberKey },
    { address: revoked.address, key: revokedKey },
  ];
}

async function open(raw: Buffer | string): Promise<OpenResult> {
  return openMessage(Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'utf8'), { listKey, members: members() });
}

function envelope(from: string, headers: string, body: string, subject = 'Encrypted message'): string {
  return `From: ${from}\r\nTo: ${LIST}\r\nSubject: ${subject}\r\nMessage-ID: <${Math.random()}@test>\r\nMIME-Version: 1.0\r\n${headers}\r\n${body}`;
}

function pgpMime(from: string, armored: string): string {
  return envelope(
    from,
    'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="enc"\r\n',
    'This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n' +
      '--enc\r\nContent-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n' +
      '--enc\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\nContent-Disposition: inline; filename="encrypted.asc"\r\n\r\n' +
      armored.replace(/\r?\n/g, '\r\n') +
      '\r\n--enc--\r\n',
  );
}

async function multipartSigned(signer: GpgMember, part: string, lineEnding = '\r\n', extraArgs: string[] = []): Promise<string> {
  const signature = (await signer.gpg.detachSign(part.replace(/\r?\n/g, '\r\n'), signer.key.fingerprint, extraArgs)).toString('utf8');
  const body =
    'This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n' +
    `--sig\r\n${part}\r\n--sig\r\nContent-Type: application/pgp-signature; name="signature.asc"\r\n\r\n${signature}\r\n--sig--\r\n`;
  const message = envelope(signer.address, 'Content-Type: multipart/signed; micalg=pgp-sha512; protocol="application/pgp-signature"; boundary="sig"\r\n', body);
  return lineEnding === '\r\n' ? message : message.replace(/\r\n/g, '\n');
}

function expectOk(result: OpenResult) {
  if (!result.ok) throw new Error(`expected ok, got ${result.failure.code}: ${result.failure.detail}`);
  return result.message;
}

function expectFailure(result: OpenResult) {
  if (result.ok) throw new Error('expected a failure');
  return result.failure;
}

function quotedPrintable(text: string): string {
  const bytes = Buffer.from(text.replace(/\r?\n/g, '\n'), 'utf8');
  const lines: string[] = [];
  for (const line of bytes.toString('latin1').split('\n')) {
    let encoded = '';
    for (const char of line) {
      const code = char.charCodeAt(0);
      encoded += code > 126 || char === '=' ? `=${code.toString(16).toUpperCase().padStart(2, '0')}` : char;
    }
    const wrapped: string[] = [];
    while (encoded.length > 72) {
      let cut = 72;
      while (encoded[cut - 1] === '=' || encoded[cut - 2] === '=') cut -= 1;
      wrapped.push(`${encoded.slice(0, cut)}=`);
      encoded = encoded.slice(cut);
    }
    wrapped.push(encoded);
    lines.push(...wrapped);
  }
  return lines.join('\r\n');
}

beforeAll(async () => {
  list = await createListKey();
  listKey = list.listKey;
  [poster, stranger, revoked] = await Promise.all([
    createGpgMember({ address: 'security@vendor.example' }, [listKey.armoredPublicKey]),
    createGpgMember({ address: 'mallory@elsewhere.example' }, [listKey.armoredPublicKey]),
    createGpgMember({ address: 'security@revoked.example' }, [listKey.armoredPublicKey]),
  ]);
  // A key that expired in 2020, with a message it signed while it was still valid.
  const createdAt = new Date('2020-01-01T00:00:00Z');
  expired = await createGpgMember({ address: 'security@expired.example', at: createdAt, expire: '1d' }, [listKey.armoredPublicKey]);
  const faked = ['--faked-system-time', '20200101T120000!'];
  expiredSignedMessage = Buffer.from(await multipartSigned(expired, INNER, '\r\n', faked));
  const revokedSigned = await revoked.gpg.encrypt(INNER, { recipients: [listKey.fingerprint], signer: revoked.key.fingerprint });
  revokedSignedMessage = Buffer.from(pgpMime(revoked.address, revokedSigned.toString('utf8')));
  revokedKey = await parseMemberKey(await revoked.gpg.revoke(revoked.key.fingerprint));
}, 120_000);

afterAll(async () => {
  await Promise.all([poster, stranger, expired, revoked].map((member) => member?.gpg.cleanup()));
  await list?.cleanup();
});

describe('openMessage: forms real clients send', () => {
  it('PGP/MIME encrypted, unsigned: decrypts, reports unsigned', async () => {
    const armored = (await poster.gpg.encrypt(INNER, { recipients: [listKey.fingerprint] })).toString('utf8');
    const message = expectOk(await open(pgpMime(poster.address, armored)));
    expect(message.encrypted).toBe(true);
    expect(message.format).toBe('pgp-mime');
    expect(message.entity.toString('utf8')).toBe(INNER);
    expect(message.verification).toMatchObject({ signed: false, valid: false });
    expect(message.verification.memberAddress).toBeUndefined();
  });

  it('armor in every layout clients write (line lengths, LF, checksum or not, armor headers, over 1 MiB) opens the same', async () => {
    const lines = Array.from({ length: 22_000 }, (_, index) => `${index.toString(36)} ${'embargoed advisory text '.repeat(3)}`);
    const inner = `Content-Type: text/plain; charset=us-ascii\r\n\r\n${lines.join('\r\n')}\r\n`;
    const armored = (await poster.gpg.encrypt(inner, { recipients: [listKey.fingerprint], signer: poster.key.fingerprint, compressLevel: 0 })).toString('latin1');
    const base64 = armored.split(/\r?\n\r?\n/)[1].split(/\r?\n=/)[0].replace(/\r?\n/g, '');
    const checksum = /\n(=[A-Za-z0-9+/]{4})\r?\n-----END/.exec(armored)?.[1];
    expect(Buffer.from(base64, 'base64').length).toBeGreaterThan(1024 * 1024);
    const layout = (width: number, options: { checksum?: boolean; headers?: string } = {}) =>
      [
        '-----BEGIN PGP MESSAGE-----',
        ...(options.headers ? [options.headers] : []),
        '',
        ...(base64.match(new RegExp(`.{1,${width}}`, 'g')) ?? []),
        ...(options.checksum && checksum ? [checksum] : []),
        '-----END PGP MESSAGE-----',
      ].join('\r\n');
    const variants: Record<string, string> = {
      'as gpg wrote it': pgpMime(poster.address, armored),
      'LF line ends': pgpMime(poster.address, armored).replace(/\r\n/g, '\n'),
      '76 characters, no checksum': pgpMime(poster.address, layout(76)),
      '64 characters, checksum': pgpMime(poster.address, layout(64, { checksum: true })),
      'one long line': pgpMime(poster.address, layout(base64.length)),
      '63 characters (not whole base64 quanta)': pgpMime(poster.address, layout(63, { checksum: true })),
      'armor headers': pgpMime(poster.address, layout(64, { checksum: true, headers: 'Comment: made by hand\r\nVersion: 1' })),
    };
    for (const [name, raw] of Object.entries(variants)) {
      const message = expectOk(await open(raw));
      expect(message.entity.equals(Buffer.from(inner)), name).toBe(true);
      expect(message.verification, name).toMatchObject({ signed: true, valid: true, memberAddress: poster.address });
    }
  });

  it('PGP/MIME encrypted and signed in one message (combined): valid, bound to the member', async () => {
    const armored = (await poster.gpg.encrypt(INNER, { recipients: [listKey.fingerprint], signer: poster.key.fingerprint })).toString('utf8');
    const message = expectOk(await open(pgpMime(poster.address, armored)));
    expect(message.entity.toString('utf8')).toBe(INNER);
    expect(message.verification).toMatchObject({ signed: true, valid: true, signingFingerprint: poster.key.fingerprint, memberAddress: poster.address });
    expect(message.verification.signedAt).toBeInstanceOf(Date);
  });

  it('signed, then encrypted (inner multipart/signed) with protected headers: verifies over the exact inner part', async () => {
    const part = 'Content-Type: text/plain; charset=utf-8; protected-headers="v1"\r\nSubject: XSA-1000 real subject\r\nFrom: security@vendor.example\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nThe real text, with trailing space =20\r\n';
    const signed = await multipartSigned(poster, part);
    const inner = signed.slice(signed.indexOf('Content-Type: multipart/signed'));
    const armored = (await poster.gpg.encrypt(inner, { recipients: [listKey.fingerprint] })).toString('utf8');
    const message = expectOk(await open(pgpMime(poster.address, armored)));
    expect(message.encrypted).toBe(true);
    expect(message.entity.toString('utf8')).toBe(part);
    expect(message.protectedHeaders.Subject).toBe('XSA-1000 real subject');
    expect(message.verification).toMatchObject({ signed: true, valid: true, memberAddress: poster.address });
  });

  it('protected headers (memory hole) inside a combined message: the real Subject comes from inside', async () => {
    const inner = 'Content-Type: text/plain; charset=utf-8; protected-headers="v1"\r\nSubject: XSA-1001 the real one\r\nTo: xen-security-issues@lists.example.org\r\n\r\nBody.\r\n';
    const armored = (await poster.gpg.encrypt(inner, { recipients: [listKey.fingerprint], signer: poster.key.fingerprint })).toString('utf8');
    const message = expectOk(await open(pgpMime(poster.address, armored)));
    expect(message.protectedHeaders.Subject).toBe('XSA-1001 the real one');
    expect(message.protectedHeaders.To).toBe(LIST);
    expect(message.verification.valid).toBe(true);
  });

  it('signed-only PGP/MIME, also when the stored message has LF line ends (RFC 3156 canonical CRLF)', async () => {
    const part = 'Content-Type: text/plain; charset=us-ascii\r\n\r\nSigned, not encrypted.\r\n';
    for (const ending of ['\r\n', '\n']) {
      const message = expectOk(await open(await multipartSigned(poster, part, ending)));
      expect(message.format).toBe('signed-only');
      expect(message.encrypted).toBe(false);
      expect(message.verification).toMatchObject({ signed: true, valid: true, memberAddress: poster.address });
      expect(message.entity.toString('utf8').replace(/\r\n/g, '\n')).toBe(part.replace(/\r\n/g, '\n'));
    }
  });

  it('inline PGP encrypted and signed', async () => {
    const armored = (await poster.gpg.encrypt('Inline secret text.\n', { recipients: [listKey.fingerprint], signer: poster.key.fingerprint, textmode: true })).toString('utf8');
    const message = expectOk(await open(envelope(poster.address, 'Content-Type: text/plain; charset=us-ascii\r\n', armored.replace(/\r?\n/g, '\r\n'))));
    expect(message.format).toBe('inline');
    expect(message.encrypted).toBe(true);
    expect(message.entity.toString('utf8')).toContain('Inline secret text.\r\n');
    expect(message.verification).toMatchObject({ valid: true, memberAddress: poster.address });
  });

  it('inline clearsigned, quoted-printable with UTF-8 and long lines (K-9/Thunderbird style)', async () => {
    const text = `Advisory text with ümlauts and a long line ${'x'.repeat(120)}\nsecond = line\n`;
    const clearsigned = (await poster.gpg.clearsign(text, poster.key.fingerprint)).toString('utf8');
    const body = quotedPrintable(clearsigned);
    expect(body).toContain('=\r\n');
    const raw = envelope(poster.address, 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n', body);
    const message = expectOk(await open(raw));
    expect(message.format).toBe('inline');
    expect(message.encrypted).toBe(false);
    expect(message.verification).toMatchObject({ signed: true, valid: true, memberAddress: poster.address });
    expect(message.signatureCovers).toBe('entity');
    // The content entity keeps the poster's bytes (still quoted-printable), so it can be passed on unchanged.
    expect(message.entity.toString('latin1')).toContain(body);
  });

  it('inline clearsigned inside multipart/alternative with an HTML twin (Outlook style)', async () => {
    const clearsigned = (await poster.gpg.clearsign('Plain advisory.\n', poster.key.fingerprint)).toString('utf8').replace(/\r?\n/g, '\r\n');
    const html = `<html><body><pre>${clearsigned.replace(/</g, '&lt;')}</pre></body></html>`;
    const raw = envelope(
      poster.address,
      'Content-Type: multipart/alternative; boundary="alt"\r\n',
      `--alt\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${clearsigned}\r\n--alt\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n${html}\r\n--alt--\r\n`,
    );
    const message = expectOk(await open(raw));
    expect(message.verification).toMatchObject({ valid: true, memberAddress: poster.address });
    expect(message.signatureCovers).toBe('part');
  });

  it('inline encrypted inside multipart/alternative with an HTML twin', async () => {
    const armored = (await poster.gpg.encrypt('Alternative secret.\n', { recipients: [listKey.fingerprint], signer: poster.key.fingerprint, textmode: true }))
      .toString('utf8')
      .replace(/\r?\n/g, '\r\n');
    const raw = envelope(
      poster.address,
      'Content-Type: multipart/alternative; boundary="alt"\r\n',
      `--alt\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${armored}\r\n--alt\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<pre>${armored}</pre>\r\n--alt--\r\n`,
    );
    const message = expectOk(await open(raw));
    expect(message.encrypted).toBe(true);
    expect(message.entity.toString('utf8')).toContain('Alternative secret.');
    expect(message.entity.toString('utf8')).not.toContain('<pre>');
    expect(message.verification.valid).toBe(true);
  });

  it('PGP/MIME rewritten by Exchange as multipart/mixed (version part + base64 encrypted.asc)', async () => {
    const armored = (await poster.gpg.encrypt(INNER, { recipients: [listKey.fingerprint], signer: poster.key.fingerprint })).toString('utf8');
    const base64 = Buffer.from(armored.replace(/\r?\n/g, '\r\n')).toString('base64').replace(/.{76}/g, '$&\r\n');
    const raw = envelope(
      poster.address,
      'Content-Type: multipart/mixed; boundary="mixed"\r\n',
      '--mixed\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\r\n' +
        '--mixed\r\nContent-Type: application/pgp-encrypted; name="PGPMIME Versions Identification"\r\nContent-Disposition: attachment; filename="PGPMIME Versions Identification"\r\nContent-Transfer-Encoding: 7bit\r\n\r\nVersion: 1\r\n' +
        `--mixed\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\nContent-Disposition: attachment; filename="encrypted.asc"\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64}\r\n--mixed--\r\n`,
    );
    const message = expectOk(await open(raw));
    expect(message.format).toBe('exchange-mangled');
    expect(message.entity.toString('utf8')).toBe(INNER);
    expect(message.verification).toMatchObject({ valid: true, memberAddress: poster.address });
  });

  it('PGP/MIME encrypted advisory that its author clearsigned inline: verifies against the author', async () => {
    const clearsigned = (await poster.gpg.clearsign('XSA text\n', poster.key.fingerprint)).toString('utf8').replace(/\r?\n/g, '\r\n');
    const inner = `Content-Type: text/plain; charset=us-ascii\r\n\r\n${clearsigned}`;
    const armored = (await poster.gpg.encrypt(inner, { recipients: [listKey.fingerprint] })).toString('utf8');
    const message = expectOk(await open(pgpMime(poster.address, armored)));
    expect(message.entity.toString('utf8')).toBe(inner);
    expect(message.verification).toMatchObject({ valid: true, memberAddress: poster.address });
  });

  it('plain mail: ok, neither encrypted nor signed, content entity unchanged', async () => {
    const message = expectOk(await open(envelope('someone@example.org', 'Content-Type: text/plain; charset=us-ascii\r\n', 'Just text.\r\n')));
    expect(message).toMatchObject({ encrypted: false, format: 'plain', verification: { signed: false, valid: false } });
    expect(message.entity.toString('utf8')).toBe('Content-Type: text/plain; charset=us-ascii\r\n\r\nJust text.\r\n');
  });
});

describe('openMessage: what must not count', () => {
  it('a tampered signed part: bad signature', async () => {
    const part = 'Content-Type: text/plain; charset=us-ascii\r\n\r\nPay 10 EUR.\r\n';
    const tampered = (await multipartSigned(poster, part)).replace('Pay 10 EUR.', 'Pay 99 EUR.');
    const message = expectOk(await open(tampered));
    expect(message.verification).toMatchObject({ signed: true, valid: false, signingFingerprint: poster.key.fingerprint });
    expect(message.verification.reason).toMatch(/bad signature/);
    expect(message.verification.memberAddress).toBeUndefined();
  });

  it('a valid signature by a key that belongs to no member does not count, even with a member From', async () => {
    const armored = (await stranger.gpg.encrypt(INNER, { recipients: [listKey.fingerprint], signer: stranger.key.fingerprint })).toString('utf8');
    const message = expectOk(await open(pgpMime(poster.address, armored)));
    expect(message.verification).toMatchObject({ signed: true, valid: false, reason: 'signed by a key that belongs to no member' });
    expect(message.verification.memberAddress).toBeUndefined();
  });

  it('expired member key: checkMemberKey blocks it and its signatures do not count', async () => {
    const problems = await checkMemberKey(expired.memberKey, expired.address);
    expect(problems.find((problem) => problem.code === 'expired')?.blocking).toBe(true);
    const message = expectOk(await open(expiredSignedMessage));
    expect(message.verification.reason).toMatch(/expired/);
    expect(message.verification.valid).toBe(false);
    expect(message.verification.memberAddress).toBeUndefined();
  });

  it('revoked member key: checkMemberKey blocks it and its signatures do not count', async () => {
    const problems = await checkMemberKey(revokedKey, revoked.address);
    expect(problems.find((problem) => problem.code === 'revoked')?.blocking).toBe(true);
    const message = expectOk(await open(revokedSignedMessage));
    expect(message.verification.reason).toMatch(/revoked/);
    expect(message.verification.valid).toBe(false);
    expect(message.verification.memberAddress).toBeUndefined();
  });

  it('a message encrypted to some other key: not-for-this-key', async () => {
    const armored = (await poster.gpg.encrypt(INNER, { recipients: [stranger.key.fingerprint] }).catch(async () => {
      await poster.gpg.importKey(stranger.armoredPublic);
      return poster.gpg.encrypt(INNER, { recipients: [stranger.key.fingerprint] });
    })).toString('utf8');
    expect(expectFailure(await open(pgpMime(poster.address, armored))).code).toBe('not-for-this-key');
  });

  it('garbage armor: bad-armor', async () => {
    const garbage = '-----BEGIN PGP MESSAGE-----\r\n\r\nThis is !!! not base64 @@@\r\n-----END PGP MESSAGE-----\r\n';
    expect(expectFailure(await open(pgpMime(poster.address, garbage))).code).toBe('bad-armor');
    const truncated = (await poster.gpg.encrypt(INNER, { recipients: [listKey.fingerprint] })).toString('utf8').slice(0, 200);
    expect(['bad-armor', 'decrypt-failed']).toContain(expectFailure(await open(pgpMime(poster.address, truncated))).code);
  });

  it('a modified ciphertext: decrypt-failed (integrity), never a throw', async () => {
    const binary = await poster.gpg.encrypt(INNER, { recipients: [listKey.fingerprint], armor: false });
    binary[binary.length - 5] ^= 0x01;
    const armored = `-----BEGIN PGP MESSAGE-----\r\n\r\n${binary.toString('base64').replace(/.{64}/g, '$&\r\n')}\r\n-----END PGP MESSAGE-----\r\n`;
    expect(expectFailure(await open(pgpMime(poster.address, armored))).code).toBe('decrypt-failed');
  });
});

describe('openMessage: hostile input is a value, never a throw', () => {
  it('signatures are reported, not thrown, when the list has no members with keys', async () => {
    const signedOnly = await multipartSigned(poster, 'Content-Type: text/plain\r\n\r\nx\r\n');
    const combined = pgpMime(poster.address, (await poster.gpg.encrypt(INNER, { recipients: [listKey.fingerprint], signer: poster.key.fingerprint })).toString('utf8'));
    for (const raw of [signedOnly, combined]) {
      const message = expectOk(await openMessage(Buffer.from(raw), { listKey, members: [] }));
      expect(message.verification).toMatchObject({ signed: true, valid: false });
    }
  });

  it('300 random corruptions and truncations of valid messages all resolve to ok or a typed failure', async () => {
    const signedOnly = Buffer.from(await multipartSigned(poster, 'Content-Type: text/plain\r\n\r\nx\r\n'));
    const combined = Buffer.from(pgpMime(poster.address, (await poster.gpg.encrypt(INNER, { recipients: [listKey.fingerprint], signer: poster.key.fingerprint })).toString('utf8')));
    let seed = 42;
    const random = (limit: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % limit;
    };
    const codes = new Set<string>();
    for (let round = 0; round < 300; round += 1) {
      const source = round % 2 === 0 ? signedOnly : combined;
      let mutated = Buffer.from(source);
      if (round % 3 === 0) mutated = mutated.subarray(0, random(mutated.length));
      for (let flips = 0; flips < 1 + random(4); flips += 1) mutated[random(mutated.length)] = random(256);
      const result = await openMessage(mutated, { listKey, members: members() });
      codes.add(result.ok ? 'ok' : result.failure.code);
    }
    expect(codes.size).toBeGreaterThan(1);
  });
});
