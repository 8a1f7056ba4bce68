// The archive's daemon components: the HTTP listener on the configured port, and embargo releases caught up after a restart.
import { afterEach, describe, expect, it } from 'vitest';
import { insertArchiveEntry, prepareArchiveEntry } from '../../src/archive/store.ts';
import { loadListKey } from '../../src/data-dir.ts';
import { buildMail } from '../helpers/archive.ts';
import { makeTestConfig, startTestDaemon, type TestConfig, type TestDaemon } from '../helpers/daemon.ts';

let config: TestConfig | null = null;
let daemon: TestDaemon | null = null;

afterEach(async () => {
  await daemon?.stop();
  config?.cleanup();
  daemon = null;
  config = null;
});

describe('archive components in the daemon', () => {
  it('serves the archive and keys, and publishes an advisory whose embargo ended while the daemon was stopped', async () => {
    config = makeTestConfig({
      // Only the catch-up pass at start may release (a cron tick during the test would make it flaky).
      server: { schedules: { embargoRelease: '0 0 1 1 *' } },
      lists: {
        'xen-security-issues': {
          kind: 'announce',
          archive: 'private',
          publishTo: 'xen-announce',
          mailOnRelease: true,
          members: [{ email: 'security@xenproject.example', key: '../keys/xenproject-security.asc', roles: ['poster', 'recipient'] }],
        },
        'xen-announce': { kind: 'public', archive: 'public', members: [] },
      },
    });
    // Both components are built in: the daemon serves HTTP and runs releases without being asked.
    daemon = await startTestDaemon({ config });
    const running = daemon.daemon!;
    expect(daemon.httpPort).toBeGreaterThan(0);
    let base = `http://127.0.0.1:${daemon.httpPort}`;
    expect(await (await fetch(`${base}/healthz`)).text()).toBe('ok\n');
    expect(await (await fetch(`${base}/keys/xen-security-issues.asc`)).text()).toContain('BEGIN PGP PUBLIC KEY BLOCK');

    // An advisory whose embargo ends a moment from now, archived as the pipeline would.
    const releaseAt = new Date(Date.now() + 1500);
    const entry = await prepareArchiveEntry({
      list: running.config().lists.get('xen-security-issues')!,
      listKey: await loadListKey(running.config(), 'xen-security-issues'),
      message: await buildMail({ subject: 'XSA-2000: daemonwordzz', messageId: 'xsa2000@xenproject.example', text: 'daemonwordzz details' }),
      receivedAt: new Date(),
      spoolId: null,
      embargoUntil: releaseAt,
    });
    insertArchiveEntry(running.db, entry);
    await daemon.stop({ keepFiles: true });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, releaseAt.getTime() - Date.now() + 50)));

    daemon = await startTestDaemon({ config });
    base = `http://127.0.0.1:${daemon.httpPort}`;
    const search = await (await fetch(`${base}/lists/xen-announce/search?q=daemonwordzz`)).text();
    expect(search).toContain(`/lists/xen-announce/msg/${encodeURIComponent('xsa2000@xenproject.example')}`);
    expect(daemon.logs().some((line) => line.msg === 'embargo released')).toBe(true);

    // mailOnRelease: the advisory is posted to xen-announce through the spool; the list engine takes it from there.
    const spooled = await daemon.waitForLog((line) => line.msg === 'released advisory spooled for mailing');
    const spool = daemon.daemon!.spool;
    const spoolId = String(spooled.spoolId);
    expect(spool.get(spoolId)).toMatchObject({ rcptTo: ['xen-announce@lists.example.org'], mailFrom: 'xen-security-issues-owner@lists.example.org' });
    await expect.poll(() => spool.get(spoolId)?.state, { timeout: 20_000 }).toBe('done');
    // Archived once: the public list's own archive stage found the released copy.
    const db = daemon.daemon!.db;
    expect(db.prepare("SELECT count(*) AS n FROM archive_entries WHERE list = 'xen-announce'").get()).toEqual({ n: 1 });
  });
});
