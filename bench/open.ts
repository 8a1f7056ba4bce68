// Opening a post: an XSA-shaped advisory (clearsigned text + checksummed patches, verified on bytes) against the same content signed and encrypted in one message.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureListKey, openMessage, parseMemberKey } from '../src/crypto/index.ts';
import { createGpgHome } from '../test/helpers/gpg.ts';
import type { BenchRow } from './types.ts';

const RUNS = 7;
const PATCH_BYTES = 1024 * 1024;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function pgpMime(armored: Buffer): Buffer {
  return Buffer.from(
    'From: security@xen.example\r\nTo: list@lists.example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="e"\r\n\r\n' +
      `--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--e\r\nContent-Type: application/octet-stream\r\n\r\n${armored.toString('latin1')}\r\n--e--\r\n`,
    'latin1',
  );
}

export async function run(): Promise<BenchRow[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'embargo-bench-open-'));
  const gpg = await createGpgHome();
  try {
    const listKey = await ensureListKey({ dataDir, listName: 'list', domain: 'lists.example.org' });
    await gpg.importKey(listKey.armoredPublicKey);
    const poster = await gpg.generateKey({ address: 'security@xen.example' });
    const members = [{ address: poster.address, key: await parseMemberKey(await gpg.exportPublic(poster.fingerprint)) }];
    const patches = [randomBytes(PATCH_BYTES), randomBytes(PATCH_BYTES)];
    const sums = patches.map((bytes, index) => `${createHash('sha256').update(bytes).digest('hex')}  xsa-${index + 1}.patch`).join('\n');
    const text = `Xen Security Advisory\n\n$ sha256sum xsa*\n${sums}\n`;
    const entity = (first: string) =>
      'Content-Type: multipart/mixed; boundary="m"\r\n\r\n' +
      `--m\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${first.replace(/\r?\n/g, '\r\n')}\r\n` +
      patches.map((bytes, index) => `--m\r\nContent-Type: application/octet-stream; name="xsa-${index + 1}.patch"\r\nContent-Transfer-Encoding: base64\r\n\r\n${bytes.toString('base64').replace(/.{1,76}/g, '$&\r\n')}`).join('') +
      '--m--\r\n';
    const recipients = [listKey.fingerprint];
    const combined = pgpMime(await gpg.encrypt(entity(text), { recipients, signer: poster.fingerprint }));
    const xsa = pgpMime(await gpg.encrypt(entity((await gpg.clearsign(text, poster.fingerprint)).toString()), { recipients }));
    const time = async (raw: Buffer): Promise<number> => {
      const times: number[] = [];
      for (let index = 0; index <= RUNS; index += 1) {
        const started = performance.now();
        const opened = await openMessage(raw, { listKey, members });
        const elapsed = performance.now() - started;
        if (!opened.ok || !opened.message.verification.valid || opened.message.signatureCovers !== 'entity') throw new Error('bench post did not open as a fully signed post');
        if (index > 0) times.push(elapsed); // the first run warms caches up
      }
      return median(times);
    };
    const combinedMs = await time(combined);
    const xsaMs = await time(xsa);
    const scenario = `2 x 1 MiB patches, median of ${RUNS}`;
    return [
      { scenario, metric: 'open: signed+encrypted in one message', value: combinedMs, unit: 'ms' },
      { scenario, metric: 'open: XSA shape (clearsigned text, checksummed patches)', value: xsaMs, unit: 'ms' },
      { scenario, metric: '  XSA / one-message ratio', value: xsaMs / combinedMs, unit: 'x' },
    ];
  } finally {
    await gpg.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  }
}
