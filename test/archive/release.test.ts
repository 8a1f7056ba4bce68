// Embargo release: nowhere public before its time (pages, search, feed, mbox), published after, exactly once across restarts.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEmbargoRelease, releaseDue, pendingEmbargoes, type ReleasedAdvisory } from '../../src/archive/release.ts';
import { metrics } from '../../src/util/metrics.ts';
import { createWebServer, type WebServer } from '../../src/web/server.ts';
import { announceList, buildMail, makeArchiveFixture, publicList, type ArchiveFixture } from '../helpers/archive.ts';

const embargoEnd = new Date('2026-05-01T12:00:00Z');
const marker = 'frobnicatorvuln';

let fixture: ArchiveFixture;
let web: WebServer;

async function startWeb(): Promise<string> {
  web = createWebServer({ db: fixture.db, config: () => fixture.config, listKeys: fixture.listKeys, logger: fixture.logger });
  await web.start();
  return `http://127.0.0.1:${web.port()}`;
}

async function publicSurfaces(base: string): Promise<Map<string, string>> {
  const paths = [
    '/',
    `/lists/${publicList}/`,
    `/lists/${publicList}/atom.xml`,
    `/lists/${publicList}/search?q=${marker}`,
    `/lists/${publicList}/2026-05/`,
    `/lists/${publicList}/2026-05/mbox`,
    `/lists/${publicList}/msg/${encodeURIComponent('xsa-1000@xenproject.example')}`,
    `/lists/${publicList}/thread/${encodeURIComponent('xsa-1000@xenproject.example')}/mbox`,
    `/lists/${announceList}/`,
  ];
  // The search page echoes the query in its form; what counts is the results.
  const bodies = await Promise.all(paths.map(async (path) => [path, (await (await fetch(base + path)).text()).replace(/ value="[^"]*"/, '')] as const));
  return new Map(bodies);
}

async function postAdvisory(): Promise<number> {
  return fixture.archive(
    announceList,
    await buildMail({
      from: 'Xen Security Team <security@xenproject.example>',
      subject: `XSA-1000: ${marker} in the scheduler`,
      messageId: 'xsa-1000@xenproject.example',
      text: `The ${marker} lets a guest crash the host.`,
      headers: { 'X-Embargo-Until': embargoEnd.toISOString() },
    }),
    { receivedAt: new Date('2026-04-20T09:00:00Z') },
  );
}

describe('embargo release', () => {
  beforeEach(async () => {
    fixture = await makeArchiveFixture({ mailOnRelease: true });
  });
  afterEach(async () => {
    await web?.stop();
    fixture.cleanup();
  });

  it('is absent from every public page and feed before its time and present after it', async () => {
    const base = await startWeb();
    const advisory = await postAdvisory();
    expect(pendingEmbargoes(fixture.db)).toEqual([{ id: advisory, list: announceList, releaseAt: embargoEnd, releaseTo: publicList }]);

    const mailed: ReleasedAdvisory[] = [];
    const options = { config: () => fixture.config, listKeys: fixture.listKeys, onMailRelease: (advisory: ReleasedAdvisory) => void mailed.push(advisory) };
    expect(await releaseDue(fixture.db, new Date(embargoEnd.getTime() - 1000), options)).toEqual([]);
    for (const [path, body] of await publicSurfaces(base)) {
      expect(body, path).not.toContain(marker);
      expect(body, path).not.toContain('XSA-1000');
    }
    expect(mailed).toEqual([]);

    const outcomes = await releaseDue(fixture.db, new Date('2026-05-01T12:00:30Z'), options);
    expect(outcomes).toMatchObject([{ entryId: advisory, status: 'released', targetList: publicList }]);
    const after = await publicSurfaces(base);
    for (const [path, body] of after) {
      // The announce list itself never becomes browsable; the front page lists lists, not messages.
      if (path === `/lists/${announceList}/` || path === '/' || path === `/lists/${publicList}/`) expect(body, path).not.toContain(marker);
      else expect(body, path).toContain(marker);
    }
    expect(after.get(`/lists/${publicList}/`)).toContain('2026-05');
    expect(mailed).toHaveLength(1);
    expect(mailed[0]).toMatchObject({ sourceList: announceList, targetList: publicList, messageId: 'xsa-1000@xenproject.example' });
    expect(mailed[0]!.message.toString()).toContain(marker);
    expect(pendingEmbargoes(fixture.db)).toEqual([]);
  });

  it('happens exactly once: concurrent passes, and again after a restart on a new database handle', async () => {
    await postAdvisory();
    const mailed: ReleasedAdvisory[] = [];
    const options = { config: () => fixture.config, listKeys: fixture.listKeys, onMailRelease: (advisory: ReleasedAdvisory) => void mailed.push(advisory) };
    const late = new Date('2026-05-02T00:00:00Z');
    const [first, second] = await Promise.all([releaseDue(fixture.db, late, options), releaseDue(fixture.db, late, options)]);
    expect([...first, ...second].filter((outcome) => outcome.status === 'released')).toHaveLength(1);

    fixture.reopen();
    expect(await releaseDue(fixture.db, new Date('2026-06-01T00:00:00Z'), options)).toEqual([]);
    const count = fixture.db.prepare("SELECT count(*) AS n FROM archive_entries WHERE list = ? AND visibility = 'public'").get(publicList) as { n: number };
    expect(count.n).toBe(1);
    expect(mailed).toHaveLength(1);
  });

  it('survives a restart between publication and mailing: the mail goes out on the next pass, once', async () => {
    await postAdvisory();
    const failing = { config: () => fixture.config, listKeys: fixture.listKeys, onMailRelease: () => Promise.reject(new Error('relay down')) };
    await expect(releaseDue(fixture.db, new Date('2026-05-02T00:00:00Z'), failing)).rejects.toThrow('relay down');
    const published = fixture.db.prepare("SELECT count(*) AS n FROM archive_entries WHERE list = ? AND visibility = 'public'").get(publicList) as { n: number };
    expect(published.n).toBe(1);

    fixture.reopen();
    const mailed: ReleasedAdvisory[] = [];
    const working = { config: () => fixture.config, listKeys: fixture.listKeys, onMailRelease: (advisory: ReleasedAdvisory) => void mailed.push(advisory) };
    expect(await releaseDue(fixture.db, new Date('2026-05-03T00:00:00Z'), working)).toEqual([]);
    expect(await releaseDue(fixture.db, new Date('2026-05-04T00:00:00Z'), working)).toEqual([]);
    expect(mailed).toHaveLength(1);
  });

  it('the scheduled component catches up at start with its clock', async () => {
    await postAdvisory();
    let now = new Date('2026-04-30T00:00:00Z');
    const component = createEmbargoRelease({ db: fixture.db, config: () => fixture.config, listKeys: fixture.listKeys, logger: fixture.logger, now: () => now });
    await component.start();
    expect(pendingEmbargoes(fixture.db)).toHaveLength(1);
    expect(metrics.render()).toContain('\nembargo_archive_embargoes_pending 1\n');
    now = new Date('2026-05-01T12:00:00Z');
    expect(await component.runOnce()).toMatchObject([{ status: 'released' }]);
    expect(metrics.render()).toContain('\nembargo_archive_embargoes_pending 0\n');
    await component.stop();
    expect(pendingEmbargoes(fixture.db)).toEqual([]);
  });
});
