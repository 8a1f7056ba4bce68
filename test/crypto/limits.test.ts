// Hostile input limits: a 1 GiB compression bomb is refused fast with bounded memory; MIME depth, part count and armor size are typed failures.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMessage, type ListKey } from '../../src/crypto/index.ts';
import { createGpgMember, createListKey, failureCode, pgpMime, type GpgMember } from './fixtures.ts';

let list: Awaited<ReturnType<typeof createListKey>>;
let listKey: ListKey;
let sender: GpgMember;

beforeAll(async () => {
  list = await createListKey();
  listKey = list.listKey;
  sender = await createGpgMember({ address: 'sender@example.org' }, [listKey.armoredPublicKey]);
});

afterAll(async () => {
  await sender?.gpg.cleanup();
  await list?.cleanup();
});

describe('limits', () => {
  it('refuses a compression bomb (1 GiB of zeros, zlib -z 9) fast and with bounded memory', async () => {
    // 1 GiB of zeros streamed into gpg: the bomb is about 1.8 MB armored.
    const zeros = spawn('head', ['-c', String(1024 * 1024 * 1024), '/dev/zero'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const bomb = await sender.gpg.encrypt(zeros.stdout, { recipients: [listKey.fingerprint], compressAlgo: 'zlib', compressLevel: 9 });
    expect(bomb.length).toBeLessThan(4 * 1024 * 1024);

    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const started = performance.now();
    const result = await openMessage(pgpMime(bomb.toString('utf8')), { listKey, members: [], limits: { maxDecompressedBytes: 16 * 1024 * 1024 } });
    const elapsed = performance.now() - started;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);

    expect(failureCode(result)).toBe('compression-bomb');
    expect(elapsed).toBeLessThan(2_000);
    // Far below the 1 GiB the bomb expands to; the limit is 16 MiB, streams and copies cost a few times that.
    expect(peak - before).toBeLessThan(128 * 1024 * 1024);
  }, 120_000);

  it('refuses a compression bomb that is only signed, not encrypted (inflated while reading, before any decryption)', async () => {
    // Found by npm run fuzz: readMessage inflated opaque signed messages without the limit (70 MiB reached the pipeline).
    const zeros = Buffer.alloc(8 * 1024 * 1024);
    const signed = (await sender.gpg.sign(zeros, sender.key.fingerprint, ['--compress-algo', 'zlib', '-z', '9'])).toString('utf8');
    const inline = Buffer.from(`From: someone@example.org\r\nContent-Type: text/plain\r\n\r\n${signed.replace(/\r?\n/g, '\r\n')}`);
    for (const raw of [inline, pgpMime(signed)]) {
      const result = await openMessage(raw, { listKey, members: [], limits: { maxDecompressedBytes: 1024 * 1024 } });
      expect(failureCode(result)).toBe('compression-bomb');
    }
  });

  it('keeps the default decompression limit finite (openpgp.js default is Infinity)', async () => {
    // 2 MiB of log-like lines: they compress about 10:1, well within the ratio limit, so only the size limit applies.
    const lines = Array.from({ length: 40_000 }, (_, index) => `${index} kernel: xen-blkback: ring ${index % 97} ready\n`).join('');
    const text = Buffer.from(lines).subarray(0, 2 * 1024 * 1024);
    const armored = await sender.gpg.encrypt(text, { recipients: [listKey.fingerprint], compressAlgo: 'zlib', compressLevel: 9 });
    const tight = await openMessage(pgpMime(armored.toString('utf8')), { listKey, members: [], limits: { maxDecompressedBytes: 1024 * 1024 } });
    expect(failureCode(tight)).toBe('compression-bomb');
    expect(tight.ok ? '' : tight.failure.detail).toMatch(/exceeds the limit/);
    const roomy = await openMessage(pgpMime(armored.toString('utf8')), { listKey, members: [] });
    expect(failureCode(roomy)).toBe('ok');
  });

  it.each(['zlib', 'zip', 'bzip2'] as const)('refuses a %s bomb by its ratio, well below the size limit (inflating only its start)', async (compressAlgo) => {
    // 64 MiB of zeros: exactly the default size limit, so only the ratio check can refuse it.
    const zeros = spawn('head', ['-c', String(64 * 1024 * 1024), '/dev/zero'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const bomb = await sender.gpg.encrypt(zeros.stdout, { recipients: [listKey.fingerprint], compressAlgo, compressLevel: 6 });
    const result = await openMessage(pgpMime(bomb.toString('utf8')), { listKey, members: [] });
    expect(failureCode(result)).toBe('compression-bomb');
    expect(result.ok ? '' : result.failure.detail).toMatch(/compression ratio above 200:1/);
  }, 120_000);

  it('MIME nesting deeper than the limit: too-deep', async () => {
    let body = 'Content-Type: text/plain\r\n\r\ninnermost\r\n';
    for (let level = 0; level < 30; level += 1) {
      body = `Content-Type: multipart/mixed; boundary="b${level}"\r\n\r\n--b${level}\r\n${body}\r\n--b${level}--\r\n`;
    }
    const result = await openMessage(Buffer.from(`From: a@example.org\r\n${body}`), { listKey, members: [] });
    expect(failureCode(result)).toBe('too-deep');
    const allowed = await openMessage(Buffer.from(`From: a@example.org\r\n${body}`), { listKey, members: [], limits: { maxMimeDepth: 40 } });
    expect(failureCode(allowed)).toBe('ok');
  });

  it('more parts than the limit: too-many-parts', async () => {
    const parts = Array.from({ length: 600 }, (_, index) => `--p\r\nContent-Type: text/plain\r\n\r\npart ${index}\r\n`).join('');
    const raw = Buffer.from(`From: a@example.org\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n${parts}--p--\r\n`);
    expect(failureCode(await openMessage(raw, { listKey, members: [] }))).toBe('too-many-parts');
  });

  it('an armored block larger than the limit: too-large, before any parsing', async () => {
    const armored = (await sender.gpg.encrypt(Buffer.alloc(200_000, 0x61), { recipients: [listKey.fingerprint], compressAlgo: 'none' })).toString('utf8');
    const result = await openMessage(pgpMime(armored), { listKey, members: [], limits: { maxArmorBytes: 100_000 } });
    expect(failureCode(result)).toBe('too-large');
  });
});
