// The start-up self-test of a list key: passes for a working key and its members, and reports (as a value) a key whose public half is not its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureListKey, generateMemberKey, parseMemberKey, selfTestListKey } from '../../src/crypto/index.ts';

describe('selfTestListKey', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'embargo-self-test-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('seals to the members and the list, opens the list copy and round-trips an archive entry', async () => {
    const listKey = await ensureListKey({ dataDir, listName: 'advisories', domain: 'lists.example.org' });
    const member = await generateMemberKey({ address: 'security@vendor.example' });
    const result = await selfTestListKey(listKey, 'advisories@lists.example.org', [
      { address: 'security@vendor.example', key: await parseMemberKey(member.armoredPublicKey) },
    ]);
    expect(result).toEqual({ ok: true });
  });

  it('fails with a reason, without throwing, when the public key is not the secret key’s', async () => {
    const listKey = await ensureListKey({ dataDir, listName: 'sharing', domain: 'lists.example.org' });
    const stranger = await generateMemberKey({ address: 'sharing@lists.example.org' });
    const result = await selfTestListKey({ ...listKey, armoredPublicKey: stranger.armoredPublicKey }, 'sharing@lists.example.org', []);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.detail).toMatch(/own copy does not open|signature/);
  });
});
