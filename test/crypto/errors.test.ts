// One test per openpgp.js message that crypto/errors.ts classifies, each made by real input: a change of wording in openpgp.js fails here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptFromArchive, encryptForArchive, openMessage, type ListKey, type OpenResult } from '../../src/crypto/index.ts';
import { armorMessage, readPacket } from '../../src/crypto/armor.ts';
import { openpgpFailureKind } from '../../src/crypto/errors.ts';
import { createGpgMember, createListKey, failureCode, pgpMime, type GpgMember } from './fixtures.ts';

let list: Awaited<ReturnType<typeof createListKey>>;
let otherList: Awaited<ReturnType<typeof createListKey>>;
let listKey: ListKey;
let sender: GpgMember;

function detail(result: OpenResult): string {
  return result.ok ? '' : result.failure.detail;
}

/** 2 MiB of log lines: about 10:1 in zlib or bzip2, far within the ratio limit, so only the size limit can refuse it. */
function logLines(): Buffer {
  const lines = Array.from({ length: 40_000 }, (_, index) => `${index} kernel: xen-blkback: ring ${index % 97} ready\n`).join('');
  return Buffer.from(lines).subarray(0, 2 * 1024 * 1024);
}

beforeAll(async () => {
  list = await createListKey();
  otherList = await createListKey('other-list');
  listKey = list.listKey;
  sender = await createGpgMember({ address: 'sender@example.org' }, [listKey.armoredPublicKey]);
});

afterAll(async () => {
  await sender?.gpg.cleanup();
  await list?.cleanup();
  await otherList?.cleanup();
});

describe('openpgp.js failures, classified', () => {
  it.each(['zlib', 'bzip2'] as const)(
    '"Maximum decompressed (message) size exceeded" from %s past the size limit: compression-bomb, the size limit named',
    async (compressAlgo) => {
      const armored = await sender.gpg.encrypt(logLines(), { recipients: [listKey.fingerprint], compressAlgo, compressLevel: 9 });
      const result = await openMessage(pgpMime(armored.toString('utf8')), { listKey, members: [], limits: { maxDecompressedBytes: 1024 * 1024 } });
      expect(failureCode(result)).toBe('compression-bomb');
      expect(detail(result)).toBe('decompressed data exceeds the limit (decrypting)');
    },
  );

  it('"Modification detected." from a SEIPD whose ciphertext was changed: decrypt-failed, an integrity failure', async () => {
    const binary = await sender.gpg.encrypt(Buffer.from('the embargoed text\n'.repeat(50)), {
      recipients: [listKey.fingerprint],
      armor: false,
      compressAlgo: 'none',
    });
    const pkesk = readPacket(binary, 0);
    expect(readPacket(binary, pkesk.end).tag).toBe(18);
    const tampered = Buffer.from(binary);
    tampered[tampered.length - 30] ^= 0x01;
    const result = await openMessage(pgpMime(armorMessage(tampered).toString('latin1')), { listKey, members: [] });
    expect(failureCode(result)).toBe('decrypt-failed');
    expect(detail(result)).toMatch(/^integrity check failed: /);
  });

  it('"Key Data Integrity failed" from a hidden recipient (gpg --throw-keyids) that is not the list: decrypt-failed, an integrity failure', async () => {
    const armored = await sender.gpg.encrypt(Buffer.from('for someone else\n'), {
      recipients: [sender.key.fingerprint],
      extraArgs: ['--throw-keyids'],
    });
    const result = await openMessage(pgpMime(armored.toString('utf8')), { listKey, members: [] });
    expect(failureCode(result)).toBe('decrypt-failed');
    expect(detail(result)).toMatch(/^integrity check failed: /);
  });

  it('"No decryption key packets found" from an archive entry of another list: no session key', async () => {
    const entry = await encryptForArchive(otherList.listKey, Buffer.from('an entry of another list'));
    const failure = await decryptFromArchive(listKey, entry).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(Error);
    expect(openpgpFailureKind(failure)).toBe('no-session-key');
  });

  it('an unknown failure is none of the kinds (the caller falls back to its generic reason)', () => {
    expect(openpgpFailureKind(new Error('Error decrypting message: something new'))).toBeUndefined();
    expect(openpgpFailureKind('not an error')).toBeUndefined();
  });
});
