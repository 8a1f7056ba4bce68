// After `embargo list-key import` (key rotation) the entries archived under the old key still decrypt: export and `get`.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMbox } from '../../src/archive/mbox.ts';
import { findArchived } from '../../src/archive/queries.ts';
import { insertArchiveEntry, prepareArchiveEntry } from '../../src/archive/store.ts';
import { loadListKey } from '../../src/data-dir.ts';
import { buildMail, makeArchiveFixture, privateList, runCli as run, type ArchiveFixture } from '../helpers/archive.ts';
import { createGpgHome, type GpgHome } from '../helpers/gpg.ts';

let fixture: ArchiveFixture;
let gpg: GpgHome;

const before = { subject: 'XSA-777 draft', messageId: 'xsa777@xenproject.example', text: 'Stored under the old list key.', receivedAt: new Date('2026-04-01T08:00:00Z') };
const after = { subject: 'Re: XSA-777 draft', messageId: 'xsa777-r1@vendor-a.example', text: 'Stored under the new list key.', receivedAt: new Date('2026-05-01T08:00:00Z') };

beforeAll(async () => {
  fixture = await makeArchiveFixture();
  gpg = await createGpgHome();
}, 30_000);

afterAll(async () => {
  fixture?.cleanup();
  await gpg?.cleanup();
});

describe('archive after a list key rotation', () => {
  it('export and a member’s get decrypt entries stored under the replaced key and under the new one', async () => {
    const configDir = fixture.testConfig.configDir;
    const oldFingerprint = fixture.listKey(privateList).fingerprint;
    await fixture.archive(privateList, await buildMail({ ...before, from: 'Security <security@xenproject.example>', date: before.receivedAt }), { receivedAt: before.receivedAt });

    // The rotation as docs/security.md describes it: a new key made with GnuPG, imported with the CLI.
    const key = await gpg.generateKey({ address: `${privateList}@lists.example.org`, name: `${privateList} mailing list` });
    const secretFile = join(fixture.testConfig.root, 'new-list-key.asc');
    writeFileSync(secretFile, await gpg.exportSecret(key.fingerprint));
    expect(await run(['list-key', 'import', privateList, secretFile, '--config', configDir])).toBe(0);
    expect(readdirSync(join(fixture.testConfig.dataDir, 'keys')).filter((name) => name.startsWith(`${privateList}.secret.asc.replaced-`))).toHaveLength(1);

    const newKey = await loadListKey(fixture.config, privateList);
    expect(newKey.fingerprint).toBe(key.fingerprint);
    expect(newKey.fingerprint).not.toBe(oldFingerprint);
    const entry = await prepareArchiveEntry({
      list: fixture.list(privateList),
      listKey: newKey,
      message: await buildMail({ ...after, from: 'Member <security@vendor-a.example>', date: after.receivedAt }),
      receivedAt: after.receivedAt,
      spoolId: null,
    });
    insertArchiveEntry(fixture.db, entry);
    fixture.db.pragma('wal_checkpoint(TRUNCATE)');

    const file = join(fixture.testConfig.root, 'rotated.mbox');
    expect(await run(['archive', 'export', privateList, '--mbox', file, '--config', configDir])).toBe(0);
    const messages = await Promise.all(parseMbox(readFileSync(file)).map((message) => simpleParser(message)));
    expect(messages.map((message) => message.messageId)).toEqual([`<${before.messageId}>`, `<${after.messageId}>`]);
    expect(messages.map((message) => message.text?.trim())).toEqual([before.text, after.text]);

    // A member's `get` of the old entry, answered with the list's current key.
    const old = await findArchived(fixture.db, fixture.list(privateList), before.messageId, newKey);
    expect(old?.toString()).toContain(before.text);
  });
});
