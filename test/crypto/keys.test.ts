// List keys on disk (modes, passphrase, import from gpg), member key checks, list-signed MIME and archive encryption.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkMemberKey,
  decryptFromArchive,
  encryptForArchive,
  ensureListKey,
  fingerprintsInArmored,
  importListKey,
  listKeyFile,
  openMessage,
  parseMemberKey,
  signMime,
  type KeyProblem,
} from '../../src/crypto/index.ts';
import { createGpgHome, type GpgHome } from '../helpers/gpg.ts';
import { createGpgMember, type GpgMember } from './fixtures.ts';

let dataDir: string;
let gpg: GpgHome;
let member: GpgMember;

function codes(problems: KeyProblem[]): string[] {
  return problems.map((problem) => problem.code).sort();
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'embargo-keys-'));
  gpg = await createGpgHome();
  member = await createGpgMember({ address: 'security@vendor.example' });
});

afterAll(async () => {
  await gpg?.cleanup();
  await member?.gpg.cleanup();
  await rm(dataDir, { recursive: true, force: true });
});

describe('list keys', () => {
  it('generates a v4 Ed25519/Cv25519 key with the three list addresses, stored 0600 in a 0700 dir, and reloads it', async () => {
    const listKey = await ensureListKey({ dataDir, listName: 'sharing', domain: 'lists.example.org' });
    expect(listKey.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    expect((await stat(listKeyFile(dataDir, 'sharing'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dataDir, 'keys'))).mode & 0o777).toBe(0o700);
    const again = await ensureListKey({ dataDir, listName: 'sharing', domain: 'lists.example.org' });
    expect(again.fingerprint).toBe(listKey.fingerprint);

    // GnuPG 2.2 reads it: v4, EdDSA primary, ECDH cv25519 subkey, all three user IDs.
    const imported = await gpg.importKey(listKey.armoredPublicKey);
    expect(imported.has('IMPORT_OK')).toBe(true);
    const colons = (await gpg.run(['--with-colons', '--list-keys', listKey.fingerprint])).stdout.toString('utf8');
    expect(colons).toMatch(/^pub:[^:]*:255:22:/m);
    expect(colons).toMatch(/^sub:[^:]*:255:18:.*:cv25519:/m);
    for (const address of ['sharing@', 'sharing-request@', 'sharing-owner@']) expect(colons).toContain(`<${address}lists.example.org>`);
  });

  it('protects the stored key with a passphrase when one is configured', async () => {
    const listKey = await ensureListKey({ dataDir, listName: 'locked', domain: 'lists.example.org', passphrase: 'correct horse' });
    const armored = await readFile(listKeyFile(dataDir, 'locked'), 'utf8');
    const packets = await gpg.listPackets(armored);
    expect(packets).toMatch(/iter\+salt S2K/);
    const plain = await gpg.listPackets(await readFile(listKeyFile(dataDir, 'sharing'), 'utf8'));
    expect(plain).not.toMatch(/S2K/);
    // Loading the stored key needs the passphrase (a fresh process has nothing cached: simulate via import).
    await expect(importListKey({ dataDir: await mkdtemp(join(tmpdir(), 'embargo-keys-')), listName: 'locked', armoredSecretKey: armored })).rejects.toThrow(/passphrase/);
    const reloaded = await importListKey({ dataDir: await mkdtemp(join(tmpdir(), 'embargo-keys-')), listName: 'locked', armoredSecretKey: armored, passphrase: 'correct horse' });
    expect(reloaded.fingerprint).toBe(listKey.fingerprint);
  });

  it('imports a list key made by gpg (moving a list here) and opens mail encrypted to it', async () => {
    const old = await gpg.generateKey({ address: 'moved@lists.example.org' });
    const secret = await gpg.exportSecret(old.fingerprint);
    const listKey = await importListKey({ dataDir, listName: 'moved', armoredSecretKey: secret });
    expect(listKey.fingerprint).toBe(old.fingerprint);
    expect((await stat(listKeyFile(dataDir, 'moved'))).mode & 0o777).toBe(0o600);
    await expect(importListKey({ dataDir, listName: 'moved', armoredSecretKey: secret })).rejects.toThrow(/already has a key/);

    await member.gpg.importKey(await gpg.exportPublic(old.fingerprint));
    const armored = await member.gpg.encrypt('Content-Type: text/plain\r\n\r\nhi\r\n', { recipients: [old.fingerprint], signer: member.key.fingerprint });
    const raw = Buffer.from(
      `From: ${member.address}\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n` +
        `--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n${armored}\r\n--b--\r\n`,
    );
    const opened = await openMessage(raw, { listKey, members: [{ address: member.address, key: member.memberKey }] });
    expect(opened.ok && opened.message.verification.memberAddress).toBe(member.address);
  });

  it('signMime: RFC 3156 multipart/signed that gpg verifies, micalg naming the real hash', async () => {
    const listKey = await ensureListKey({ dataDir, listName: 'sharing', domain: 'lists.example.org' });
    const content = Buffer.from('Content-Type: text/plain; charset=us-ascii\r\n\r\nYour list key, as requested.\r\n');
    const signed = (await signMime({ listKey, content, headers: [['From', 'sharing@lists.example.org'], ['Subject', 'Key'], ['Content-Type', 'x/ignored']] })).toString('latin1');
    const boundary = /boundary="([^"]+)"/.exec(signed)![1];
    const micalg = /micalg=(pgp-[a-z0-9]+)/.exec(signed)![1];
    expect(signed).not.toContain('x/ignored');
    const [, signedPart, signaturePart] = signed.split(`--${boundary}`);
    const part = signedPart.slice(2, -2);
    expect(part).toBe(content.toString('latin1'));
    const signature = signaturePart.split('\r\n\r\n').slice(1).join('\r\n\r\n');
    const verified = await gpg.verify(part, signature);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.args('VALIDSIG')?.at(-1)).toBe(listKey.fingerprint);
    const hashNames: Record<string, string> = { '8': 'pgp-sha256', '10': 'pgp-sha512', '9': 'pgp-sha384' };
    expect(hashNames[verified.args('VALIDSIG')![7]]).toBe(micalg);
    // And our own reader agrees.
    const self = await parseMemberKey(listKey.armoredPublicKey);
    const opened = await openMessage(Buffer.from(signed, 'latin1'), { listKey, members: [{ address: 'sharing@lists.example.org', key: self }] });
    expect(opened.ok && opened.message.verification.valid).toBe(true);
  });

  it('archive encryption round-trips and the stored bytes do not contain the text', async () => {
    const listKey = await ensureListKey({ dataDir, listName: 'sharing', domain: 'lists.example.org' });
    const text = Buffer.from('Embargoed until 2027-01-01: the bug is in the hypercall handler.');
    const stored = await encryptForArchive(listKey, text);
    expect(stored.includes('hypercall')).toBe(false);
    expect((await decryptFromArchive(listKey, stored)).equals(text)).toBe(true);
  });
});

describe('member keys', () => {
  it('parses and describes a key; fingerprintsInArmored lists every key in a file', async () => {
    const key = member.memberKey;
    expect(key.fingerprint).toBe(member.key.fingerprint);
    expect(key.algorithm).toBe('curve25519');
    expect(key.expiresAt).toBeNull();
    expect(key.userIds[0]).toContain('<security@vendor.example>');
    const other = await gpg.generateKey({ address: 'other@vendor.example' });
    const both = member.armoredPublic + (await gpg.exportPublic(other.fingerprint));
    expect(await fingerprintsInArmored(both)).toEqual([member.key.fingerprint, other.fingerprint]);
    expect(await fingerprintsInArmored('not a key')).toEqual([]);
    await expect(parseMemberKey('not a key')).rejects.toThrow(/not a readable OpenPGP public key/);
  });

  it('a good key has no problems', async () => {
    expect(await checkMemberKey(member.memberKey, 'Security@Vendor.example')).toEqual([]);
  });

  it('reports user-id mismatch and expiring within 14 days, both non-blocking', async () => {
    const soon = await gpg.generateKey({ address: 'soon@vendor.example', expire: '7d' });
    const key = await parseMemberKey(await gpg.exportPublic(soon.fingerprint));
    const problems = await checkMemberKey(key, 'security@vendor.example');
    expect(codes(problems)).toEqual(['expires-soon', 'user-id-mismatch']);
    expect(problems.every((problem) => !problem.blocking)).toBe(true);
    expect(problems[0].detail).toContain(soon.fingerprint);
    // The warning window follows the configured days (schedules.keyExpiryWarningDays).
    expect(codes(await checkMemberKey(key, 'soon@vendor.example', new Date(), { expiresSoonDays: 3 }))).toEqual([]);
  });

  it('reports a key without an encryption subkey as blocking', async () => {
    const signOnly = await gpg.generateKey({ address: 'signonly@vendor.example', signOnly: true });
    const problems = await checkMemberKey(await parseMemberKey(await gpg.exportPublic(signOnly.fingerprint)), 'signonly@vendor.example');
    expect(codes(problems)).toEqual(['no-encryption-subkey']);
    expect(problems[0].blocking).toBe(true);
  });

  it('reports RSA under 2048 bits and SHA-1-only self-signatures', async () => {
    const weak = await gpg.generateKey({ address: 'weak@vendor.example', algorithm: 'rsa1024', extraArgs: ['--cert-digest-algo', 'SHA1', '--digest-algo', 'SHA1'] });
    const problems = await checkMemberKey(await parseMemberKey(await gpg.exportPublic(weak.fingerprint)), 'weak@vendor.example');
    expect(codes(problems)).toContain('weak-rsa');
    expect(codes(problems)).toContain('sha1-only');
    expect(problems.find((problem) => problem.code === 'sha1-only')?.blocking).toBe(false);
  });
});
