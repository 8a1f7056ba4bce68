// `embargo archive export`: decrypts a private list's archive into an mbox an admin can read, filtered by date.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMbox } from '../../src/archive/mbox.ts';
import { buildMail, makeArchiveFixture, privateList, runCli as run, type ArchiveFixture } from '../helpers/archive.ts';

let fixture: ArchiveFixture;

const posts = [
  { subject: 'XSA-501 draft: shadow paging flaw', messageId: 'xsa501@xenproject.example', text: 'Draft advisory text.\nFrom here on it gets technical.\n', receivedAt: new Date('2026-02-10T08:00:00Z') },
  { subject: 'Re: XSA-501 draft', messageId: 'xsa501-r1@vendor-a.example', text: 'Our backport is ready.', receivedAt: new Date('2026-03-02T08:00:00Z') },
  { subject: 'Re: XSA-501 draft', messageId: 'xsa501-r2@vendor-b.example', text: 'Testing now. Ünïcode ✓', receivedAt: new Date('2026-03-05T08:00:00Z') },
];

beforeAll(async () => {
  fixture = await makeArchiveFixture();
  for (const post of posts) {
    await fixture.archive(privateList, await buildMail({ ...post, from: 'Member <security@vendor-a.example>', date: post.receivedAt }), { receivedAt: post.receivedAt });
  }
  // The CLI opens the database itself, as an admin's shell would next to a running daemon.
  fixture.db.pragma('wal_checkpoint(TRUNCATE)');
});
afterAll(() => fixture?.cleanup());

describe('embargo archive export', () => {
  it('writes every message of a private list decrypted, mode 0600, parseable as the original mail', async () => {
    const file = join(fixture.testConfig.root, 'all.mbox');
    expect(await run(['archive', 'export', privateList, '--mbox', file, '--config', fixture.testConfig.configDir])).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const messages = await Promise.all(parseMbox(readFileSync(file)).map((message) => simpleParser(message)));
    expect(messages.map((message) => message.subject)).toEqual(posts.map((post) => post.subject));
    expect(messages.map((message) => message.messageId)).toEqual(posts.map((post) => `<${post.messageId}>`));
    expect(messages.map((message) => message.text?.trim())).toEqual(posts.map((post) => post.text.trim()));
  });

  it('filters by --since and refuses to overwrite a file or read a bad date', async () => {
    const file = join(fixture.testConfig.root, 'march.mbox');
    expect(await run(['archive', 'export', privateList, '--since', '2026-03-01', '--mbox', file, '--config', fixture.testConfig.configDir])).toBe(0);
    const messages = await Promise.all(parseMbox(readFileSync(file)).map((message) => simpleParser(message)));
    expect(messages.map((message) => message.messageId)).toEqual(['<xsa501-r1@vendor-a.example>', '<xsa501-r2@vendor-b.example>']);
    expect(await run(['archive', 'export', privateList, '--mbox', file, '--config', fixture.testConfig.configDir])).toBe(1);
    const other = join(fixture.testConfig.root, 'bad.mbox');
    expect(await run(['archive', 'export', privateList, '--since', 'last week', '--mbox', other, '--config', fixture.testConfig.configDir])).toBe(2);
    expect(await run(['archive', 'export', 'no-such-list', '--mbox', other, '--config', fixture.testConfig.configDir])).toBe(1);
    expect(existsSync(other)).toBe(false);
  });
});
