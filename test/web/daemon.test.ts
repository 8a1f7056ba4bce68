// The archive's daemon components: the HTTP listener on the configured port, and embargo releases caught up after a restart.
import { afterEach, describe, expect, it } from 'vitest';
import { sealRevision } from '../../src/advisories/content.ts';
import { recordRevision } from '../../src/advisories/store.ts';
import { loadListKey } from '../../src/data-dir.ts';
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
          advisoryPattern: 'XSA-[0-9]+',
          members: [{ email: 'security@xenproject.example', key: '../keys/xenproject-security.asc', roles: ['poster', 'recipient'] }],
        },
        'xen-announce': { kind: 'public', archive: 'public', members: [{ email: 'reader@example.net', roles: ['recipient'] }] },
      },
    });
    // Both components are built in: the daemon serves HTTP and runs releases without being asked.
    daemon = await startTestDaemon({ config });
    const running = daemon.daemon!;
    expect(daemon.httpPort).toBeGreaterThan(0);
    let base = `http://127.0.0.1:${daemon.httpPort}`;
    expect(await (await fetch(`${base}/healthz`)).text()).toBe('ok\n');
    expect(await (await fetch(`${base}/keys/xen-security-issues.asc`)).text()).toContain('BEGIN PGP PUBLIC KEY BLOCK');

    // An advisory whose embargo ends a moment from now, recorded as the pipeline's track-advisory stage would.
    const releaseAt = new Date(Date.now() + 1500);
    const entity = Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\ndaemonwordzz details\r\n');
    const sealed = await sealRevision(await loadListKey(running.config(), 'xen-security-issues'), {
      advisoryId: 'XSA-2000',
      title: 'XSA-2000: daemonwordzz',
      copy: { content: entity, protectedHeaders: [['Subject', 'XSA-2000: daemonwordzz']], note: '', outerHeaders: [], messageId: 'xsa2000@xenproject.example' },
      publishable: entity,
    });
    recordRevision(running.db, {
      list: 'xen-security-issues',
      advisoryId: 'XSA-2000',
      spoolId: null,
      receivedAt: new Date(),
      date: { kind: 'date', at: releaseAt },
      signedBy: null,
      sealed,
      now: new Date(),
    });
    await daemon.stop({ keepFiles: true });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, releaseAt.getTime() - Date.now() + 50)));

    daemon = await startTestDaemon({ config });
    base = `http://127.0.0.1:${daemon.httpPort}`;
    await daemon.waitForLog((line) => line.msg === 'advisory released');
    const search = await (await fetch(`${base}/lists/xen-announce/search?q=daemonwordzz`)).text();
    expect(search).toContain('/lists/xen-announce/msg/xsa-2000.r1.');
    const page = await fetch(`${base}/lists/xen-announce/advisories/XSA-2000`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('daemonwordzz details');

    // mailOnRelease: queued for the public list's subscriber in the release's own transaction, under the server's Message-ID.
    const db = daemon.daemon!.db;
    const queued = db.prepare("SELECT recipient, message_id FROM outbound WHERE list = 'xen-announce'").all() as Array<{ recipient: string; message_id: string }>;
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatchObject({ recipient: 'reader@example.net' });
    expect(queued[0]!.message_id).toMatch(/^xsa-2000\.r1\.[0-9a-f]{16}@lists\.example\.org$/);
    expect(db.prepare("SELECT count(*) AS n FROM archive_entries WHERE list = 'xen-announce'").get()).toEqual({ n: 1 });
  });
});
