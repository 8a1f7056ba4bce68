// The open pool: real GnuPG mail opened in worker threads gives what openMessage gives in this thread, several at once.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMessage } from '../../src/crypto/index.ts';
import { createOpenPool } from '../../src/lists/open-pool.ts';
import type { OpenPool } from '../../src/lists/open-pool.ts';
import { createGpgMember, createListKey, type GpgMember } from '../crypto/fixtures.ts';

const LIST = 'xen-security-issues';
let list: Awaited<ReturnType<typeof createListKey>>;
let poster: GpgMember;
let pool: OpenPool;

beforeAll(async () => {
  list = await createListKey(LIST);
  poster = await createGpgMember({ address: 'security@xenproject.example' }, [list.listKey.armoredPublicKey]);
  pool = createOpenPool({ dataDir: list.dataDir }, 2);
});

afterAll(async () => {
  await pool?.close();
  await poster?.gpg.cleanup();
  await list?.cleanup();
});

function pgpMime(armored: string, subject: string): Buffer {
  return Buffer.from(
    `From: ${poster.address}\r\nTo: ${LIST}@lists.example.org\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\n` +
      'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="enc"\r\n\r\n' +
      '--enc\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
      `--enc\r\nContent-Type: application/octet-stream\r\n\r\n${armored.replace(/\r?\n/g, '\r\n')}\r\n--enc--\r\n`,
  );
}

async function signedPost(text: string): Promise<Buffer> {
  const entity = `Content-Type: text/plain; charset=utf-8\r\n\r\n${text}\r\n`;
  const armored = await poster.gpg.encrypt(entity, { recipients: [list.listKey.fingerprint], signer: poster.key.fingerprint });
  return pgpMime(armored.toString('utf8'), 'x');
}

describe('open pool', () => {
  it('opens signed and encrypted posts in its threads, several at once, as openMessage does here', async () => {
    const posts = await Promise.all(['one', 'two', 'three', 'four'].map((text) => signedPost(`XSA-1 part ${text}`)));
    const members = [{ address: poster.address, armored: poster.armoredPublic }];
    const results = await Promise.all(posts.map((raw) => pool.open({ raw, listName: LIST, members })));
    for (const [index, result] of results.entries()) {
      if (!result.ok) throw new Error(`${result.failure.code}: ${result.failure.detail}`);
      const here = await openMessage(posts[index], { listKey: list.listKey, members: [{ address: poster.address, key: poster.memberKey }] });
      if (!here.ok) throw new Error('openMessage failed in this thread');
      // The entity comes back as a Buffer, byte for byte, and the signature is bound to the member the same way.
      expect(Buffer.isBuffer(result.message.entity)).toBe(true);
      expect(result.message.entity.equals(here.message.entity)).toBe(true);
      expect(result.message.verification).toEqual(here.message.verification);
      expect(result.message.verification).toMatchObject({ valid: true, memberAddress: poster.address });
    }
  });

  it('is not ready before warm(); warm() loads the lists\' keys in its threads, then says ready', async () => {
    const fresh = createOpenPool({ dataDir: list.dataDir }, 1);
    try {
      expect(fresh.ready).toBe(false);
      fresh.warm([{ listName: LIST, members: [{ address: poster.address, armored: poster.armoredPublic }] }]);
      const deadline = Date.now() + 30_000;
      while (!fresh.ready && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(fresh.ready).toBe(true);
      const result = await fresh.open({ raw: await signedPost('XSA-2'), listName: LIST, members: [{ address: poster.address, armored: poster.armoredPublic }] });
      expect(result).toMatchObject({ ok: true, message: { verification: { valid: true, memberAddress: poster.address } } });
    } finally {
      await fresh.close();
    }
  });

  it('returns failures as values, e.g. a compression bomb refused by its ratio inside the thread', async () => {
    const zeros = spawn('head', ['-c', String(64 * 1024 * 1024), '/dev/zero'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const bomb = await poster.gpg.encrypt(zeros.stdout, { recipients: [list.listKey.fingerprint], compressAlgo: 'zlib', compressLevel: 6 });
    const result = await pool.open({ raw: pgpMime(bomb.toString('utf8'), 'bomb'), listName: LIST, members: [] });
    expect(result).toMatchObject({ ok: false, failure: { code: 'compression-bomb' } });
    expect(result.ok ? '' : result.failure.detail).toMatch(/ratio above 200:1/);
  }, 60_000);

  it('a message encrypted to another key: not-for-this-key, a value and not an exception', async () => {
    const armored = await poster.gpg.encrypt('hello', { recipients: [poster.key.fingerprint] });
    const result = await pool.open({ raw: pgpMime(armored.toString('utf8'), 'y'), listName: LIST, members: [] });
    expect(result).toMatchObject({ ok: false, failure: { code: 'not-for-this-key' } });
  });
});
