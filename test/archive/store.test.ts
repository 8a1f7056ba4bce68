// Archive storage: public entries, threads (including replies that arrive first), search, idempotence, private at rest.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleParser } from 'mailparser';
import { findArchived, publicMessagesInMonth, publicMonths, publicThread, searchPublic, searchPublicPage, snippetEnd, snippetStart } from '../../src/archive/queries.ts';
import { indexUnsearchedPublicEntries, prepareArchiveEntry } from '../../src/archive/store.ts';
import { applicationsList, buildMail, makeArchiveFixture, privateList, announceList, type ArchiveFixture } from '../helpers/archive.ts';

let fixture: ArchiveFixture;

beforeAll(async () => {
  fixture = await makeArchiveFixture();
});
afterAll(() => fixture?.cleanup());

describe('public archive', () => {
  it('stores messages by month, threads replies (even one that arrives before its parent) and ignores a second copy', async () => {
    const march = new Date('2026-03-14T10:00:00Z');
    const root = await fixture.archive(applicationsList, await buildMail({ subject: 'Application from Example Corp', messageId: 'root@corp.example', text: 'We ship Xen in our appliance.' }), { receivedAt: march });
    // The grandchild arrives before the child it replies to.
    const grandchild = await fixture.archive(
      applicationsList,
      await buildMail({ subject: 'Re: Re: Application', messageId: 'grandchild@corp.example', inReplyTo: 'child@xen.example', references: ['root@corp.example', 'child@xen.example'], text: 'Here it is.' }),
      { receivedAt: new Date('2026-03-15T10:00:00Z') },
    );
    const child = await fixture.archive(
      applicationsList,
      await buildMail({ subject: 'Re: Application', messageId: 'child@xen.example', inReplyTo: 'root@corp.example', references: ['root@corp.example'], text: 'Please send your public URL.' }),
      { receivedAt: new Date('2026-03-16T10:00:00Z') },
    );
    // A reply whose only reference arrives later still joins once the parent does.
    const early = await fixture.archive(applicationsList, await buildMail({ subject: 'Re: Second', messageId: 'early@x.example', inReplyTo: 'second@x.example', text: 'early reply' }), { receivedAt: new Date('2026-04-01T09:00:00Z') });
    const second = await fixture.archive(applicationsList, await buildMail({ subject: 'Second application', messageId: 'second@x.example', text: 'another applicant' }), { receivedAt: new Date('2026-04-01T10:00:00Z') });

    expect(await fixture.archive(applicationsList, await buildMail({ subject: 'Application from Example Corp', messageId: 'root@corp.example', text: 'duplicate delivery' }))).toBe(root);

    expect(publicMonths(fixture.db, applicationsList)).toEqual([
      { month: '2026-04', count: 2 },
      { month: '2026-03', count: 3 },
    ]);
    const thread = publicThread(fixture.db, applicationsList, 'grandchild@corp.example');
    expect(thread.map((entry) => entry.id)).toEqual([root, grandchild, child]);
    expect(new Set(thread.map((entry) => entry.threadId)).size).toBe(1);
    expect(publicThread(fixture.db, applicationsList, 'second@x.example').map((entry) => entry.id)).toEqual([early, second]);
    const inMarch = publicMessagesInMonth(fixture.db, applicationsList, '2026-03');
    expect(inMarch.map((entry) => entry.subject)).toEqual(['Application from Example Corp', 'Re: Re: Application', 'Re: Application']);
    expect(inMarch[0]).toMatchObject({ messageId: 'root@corp.example', senderName: 'Alice Applicant', senderAddress: 'alice@applicant.example' });
  });

  it('finds messages by words in subject, body and sender, and treats search syntax as plain words', async () => {
    expect(searchPublic(fixture.db, applicationsList, 'appliance').map((entry) => entry.messageId)).toEqual(['root@corp.example']);
    expect(searchPublic(fixture.db, applicationsList, 'second application').map((entry) => entry.messageId)).toEqual(['second@x.example']);
    expect(searchPublic(fixture.db, applicationsList, 'Alice').length).toBe(5);
    expect(searchPublic(fixture.db, applicationsList, 'appliance OR "NEAR(" *')).toEqual([]);
    expect(searchPublic(fixture.db, applicationsList, '')).toEqual([]);
    // Another list's words are not found here.
    expect(searchPublic(fixture.db, 'xen-announce', 'appliance')).toEqual([]);
  });

  it('pages results with the count of all matches and a body snippet around the match', () => {
    const first = searchPublicPage(fixture.db, applicationsList, 'Alice', 2, 0);
    expect(first.total).toBe(5);
    expect(first.hits).toHaveLength(2);
    const last = searchPublicPage(fixture.db, applicationsList, 'Alice', 2, 4);
    expect(last.hits.map((hit) => hit.summary.messageId)).toEqual(['root@corp.example']);
    expect(searchPublicPage(fixture.db, applicationsList, 'Alice', 2, 6)).toEqual({ total: 5, more: false, hits: [] });
    // Counting stops at the limit: the page then says "more than", and pages reach only that far.
    const capped = searchPublicPage(fixture.db, applicationsList, 'Alice', 2, 0, 3);
    expect({ total: capped.total, more: capped.more, hits: capped.hits.length }).toEqual({ total: 3, more: true, hits: 2 });
    expect(searchPublicPage(fixture.db, applicationsList, 'Alice', 2, 4, 3).hits).toEqual([]);
    const [hit] = searchPublicPage(fixture.db, applicationsList, 'appliance', 20, 0).hits;
    expect(hit!.snippet.trim()).toBe(`We ship Xen in our ${snippetStart}appliance${snippetEnd}.`);
  });

  it('indexes again the public entries archived before the search index kept its text (archive-002)', async () => {
    const before = searchPublicPage(fixture.db, applicationsList, 'appliance', 20, 0);
    // What the migration leaves: an empty index next to the archived rows.
    fixture.db.exec('DELETE FROM archive_search');
    expect(searchPublicPage(fixture.db, applicationsList, 'appliance', 20, 0).total).toBe(0);
    expect(await indexUnsearchedPublicEntries(fixture.db, 2)).toBe(5);
    expect(searchPublicPage(fixture.db, applicationsList, 'appliance', 20, 0)).toEqual(before);
    expect(searchPublic(fixture.db, applicationsList, 'Alice').length).toBe(5);
    // Nothing left to do, and private entries are never indexed.
    expect(await indexUnsearchedPublicEntries(fixture.db)).toBe(0);
    expect((fixture.db.prepare("SELECT count(*) AS n FROM archive_search AS s JOIN archive_entries AS e ON e.id = s.rowid WHERE e.visibility = 'private'").get() as { n: number }).n).toBe(0);
  });
});

describe('private archive', () => {
  const subject = 'XSA-999 grant table use-after-free zorblefrotz';
  const body = 'The quux-hypercall double-frees a page: embargoed until 2026-12-01 plinkwobble.';

  it('keeps subject, sender, body and Message-ID out of the SQLite file and its WAL, and decrypts on request', async () => {
    const message = await buildMail({ from: 'Security Team <security@xenproject.example>', subject, messageId: 'xsa999-secret-id@xenproject.example', text: body });
    const id = await fixture.archive(privateList, message);
    expect(id).toBeGreaterThan(0);
    // Also an advisory on the announce list (embargoed, pending release).
    await fixture.archive(announceList, await buildMail({ subject: `${subject} (announce)`, messageId: 'xsa999-announce@xenproject.example', text: `${body}\nEmbargo-Until: 2030-01-01T12:00:00Z` }));

    const row = fixture.db.prepare('SELECT * FROM archive_entries WHERE id = ?').get(id) as Record<string, unknown>;
    expect(row).toMatchObject({ visibility: 'private', encrypted: 1, subject: null, sender_address: null, sender_name: null, message_id: null });
    expect(existsSync(`${fixture.dbFile}-wal`)).toBe(true);
    const needles = ['zorblefrotz', 'plinkwobble', 'xsa999-secret-id', 'quux-hypercall', 'security@xenproject.example'];
    for (const file of [fixture.dbFile, `${fixture.dbFile}-wal`]) {
      const bytes = readFileSync(file);
      for (const needle of needles) {
        expect(bytes.includes(Buffer.from(needle, 'utf8')), `${needle} in ${file}`).toBe(false);
        expect(bytes.includes(Buffer.from(needle, 'utf16le')), `${needle} (UTF-16) in ${file}`).toBe(false);
      }
    }
    // The checker itself can fail: the public list's words are there.
    const wal = readFileSync(`${fixture.dbFile}-wal`);
    expect(Buffer.concat([readFileSync(fixture.dbFile), wal]).includes(Buffer.from('appliance'))).toBe(true);

    const decrypted = await findArchived(fixture.db, fixture.list(privateList), '<xsa999-secret-id@xenproject.example>', fixture.listKey(privateList));
    expect(decrypted).not.toBeNull();
    const parsed = await simpleParser(decrypted!);
    expect(parsed.subject).toBe(subject);
    expect(parsed.text?.trim()).toBe(body);
    expect(await findArchived(fixture.db, fixture.list(privateList), 'nope@nowhere', fixture.listKey(privateList))).toBeNull();
    // Nothing private shows in public queries.
    expect(searchPublic(fixture.db, privateList, 'zorblefrotz')).toEqual([]);
    expect(publicMonths(fixture.db, privateList)).toEqual([]);
  });

  it('threads private messages by hashed ids without storing the ids', async () => {
    const first = await fixture.archive(privateList, await buildMail({ subject: 'p1', messageId: 'p1@vendor.example', text: 'x' }));
    const reply = await fixture.archive(privateList, await buildMail({ subject: 'p2', messageId: 'p2@vendor.example', inReplyTo: 'p1@vendor.example', references: ['p1@vendor.example'], text: 'y' }));
    const threads = fixture.db.prepare('SELECT id, thread_id FROM archive_entries WHERE id IN (?, ?)').all(first, reply) as Array<{ id: number; thread_id: number }>;
    expect(threads.map((row) => row.thread_id)).toEqual([first, first]);
  });
});

describe('embargo detection', () => {
  it('reads X-Embargo-Until, else the configured pattern, only on announce lists', async () => {
    const list = fixture.list(announceList);
    const key = fixture.listKey(announceList);
    const withHeader = await prepareArchiveEntry({
      list,
      listKey: key,
      message: await buildMail({ subject: 's', messageId: 'h@x', text: 'Embargo-Until: 2031-01-01T00:00:00Z', headers: { 'X-Embargo-Until': '2030-06-01T12:00:00+02:00' } }),
      receivedAt: new Date(),
      spoolId: 'spool-1',
    });
    expect(withHeader.releaseAt?.toISOString()).toBe('2030-06-01T10:00:00.000Z');
    expect(withHeader.releaseTo).toBe('xen-announce');
    expect(withHeader.visibility).toBe('private');

    const withPattern = await prepareArchiveEntry({ list, listKey: key, message: await buildMail({ subject: 's', messageId: 'p@x', text: 'Details.\nEmbargo-Until: 2031-01-01T00:00:00Z\n' }), receivedAt: new Date(), spoolId: null });
    expect(withPattern.releaseAt?.toISOString()).toBe('2031-01-01T00:00:00.000Z');

    const garbage = await prepareArchiveEntry({ list, listKey: key, message: await buildMail({ subject: 's', messageId: 'g@x', text: 'no date', headers: { 'X-Embargo-Until': 'next tuesday' } }), receivedAt: new Date(), spoolId: null });
    expect(garbage.releaseAt).toBeNull();

    const publicPost = await prepareArchiveEntry({
      list: fixture.list(applicationsList),
      listKey: fixture.listKey(applicationsList),
      message: await buildMail({ subject: 's', messageId: 'pub@x', text: 'hi', headers: { 'X-Embargo-Until': '2030-06-01T12:00:00Z' } }),
      receivedAt: new Date(),
      spoolId: null,
    });
    expect(publicPost.releaseAt).toBeNull();
    expect(publicPost.visibility).toBe('public');
  });
});
