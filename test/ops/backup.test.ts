// Backup while posting: `embargo backup` during a stream of posts, `embargo restore` into a fresh data directory, and a daemon on it that delivers what was pending.
import { readFileSync, readdirSync, statSync, writeFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTestConfig, publicListOf, startTestDaemon, type TestConfig, type TestDaemon } from '../helpers/daemon.ts';
import { runCli } from '../helpers/lists.ts';
import { startRelayPeer, type RelayPeer } from '../helpers/relay.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const listName = 'predisclosure-applications';
const list = `${listName}@lists.example.org`;
const members = ['security@xenproject.example', 'security@vendor-a.example'];
const lists = { [listName]: publicListOf(members.map((email, index) => ({ email, keyFile: index === 0 ? 'xenproject-security.asc' : 'vendor-a.asc' }))) };
// Copies wait in the queue (the relay is down for the original), so the backup holds pending deliveries.
const server = { dkim: { selector: 'backup-test' }, relay: { retrySchedule: [1] }, schedules: { retrySweep: '* * * * * *' } };

function filesIn(root: string, prefix = ''): string[] {
  return readdirSync(join(root, prefix), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesIn(root, join(prefix, entry.name)) : [join(prefix, entry.name)],
  );
}

describe('embargo backup and restore', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'embargo-backup-'));
  const backupDir = join(scratch, 'backup');
  let original: TestConfig;
  let restored: TestConfig;
  let relay: RelayPeer;
  let daemon: TestDaemon | null = null;
  afterAll(async () => {
    await daemon?.stop();
    await relay?.close();
    original?.cleanup();
    restored?.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  // Two daemons, two CLI runs and a restore: minutes on a loaded 2-core machine.
  it('takes a consistent backup during a stream of posts, restores it, and the restored daemon exports and delivers everything', { timeout: 300_000 }, async () => {
    original = makeTestConfig({ relay: { host: '127.0.0.1', port: 9 }, server, lists });
    expect((await runCli(['dkim', 'generate', '--config', original.configDir])).code).toBe(0);
    daemon = await startTestDaemon({ config: original });

    // A stream of posts; the backup starts after the fifth and the stream goes on until it has finished.
    let backupResult: Promise<{ code: number; stdout: string; stderr: string }> | null = null;
    let backupDone = false;
    let posted = 0;
    while (!backupDone || posted < 12) {
      const from = `applicant${posted}@vendor.example`;
      const sent = await sendMail({ port: daemon.smtpPort, from, to: [list], raw: makeMessage({ from, to: list, subject: `application ${posted}` }) });
      expect(sent.code).toBe(250);
      posted++;
      if (posted === 5) backupResult = runCli(['backup', backupDir, '--config', original.configDir]).finally(() => void (backupDone = true));
    }
    const made = await backupResult!;
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    await daemon.stop();
    daemon = null;

    // Everything private, and the keys byte-identical to the live ones.
    const manifest = JSON.parse(readFileSync(join(backupDir, 'manifest.json'), 'utf8')) as { files: Array<{ path: string; sha256: string }> };
    for (const file of filesIn(backupDir)) expect(statSync(join(backupDir, file)).mode & 0o777, file).toBe(0o600);
    const keyFiles = filesIn(original.dataDir).filter((file) => file.startsWith('keys/') || file.startsWith('dkim/'));
    expect(keyFiles).toContain('dkim/backup-test.key');
    expect(keyFiles.filter((file) => file.endsWith('.secret.asc'))).toHaveLength(3);
    for (const file of keyFiles) {
      expect(readFileSync(join(backupDir, 'data', file)).equals(readFileSync(join(original.dataDir, file))), file).toBe(true);
      expect(manifest.files.map((entry) => entry.path)).toContain(`data/${file}`);
    }
    expect(manifest.files.map((entry) => entry.path)).toContain('config/server.yaml');

    // What the snapshot holds: archived posts, and copies still waiting for the relay.
    const snapshot = new Database(join(backupDir, 'data', 'embargo.sqlite'), { readonly: true });
    expect((snapshot.pragma('integrity_check') as Array<{ integrity_check: string }>)[0].integrity_check).toBe('ok');
    const archived = (snapshot.prepare('SELECT COUNT(*) AS n FROM archive_entries WHERE list = ?').get(listName) as { n: number }).n;
    const pending = (snapshot.prepare("SELECT id FROM outbound WHERE state IN ('queued', 'sending', 'deferred')").all() as Array<{ id: number }>).map((row) => row.id);
    const queuedPosts = (snapshot.prepare("SELECT COUNT(*) AS n FROM spool WHERE state IN ('queued', 'processing')").get() as { n: number }).n;
    snapshot.close();
    console.log(`backup during ${posted} posts: ${archived} archived, ${pending.length} copies pending, ${queuedPosts} posts not yet processed`);
    expect(archived).toBeGreaterThan(0);
    expect(pending.length).toBeGreaterThan(0);

    // A damaged copy of the backup is refused before anything is written.
    const damaged = join(scratch, 'damaged');
    cpSync(backupDir, damaged, { recursive: true });
    const keyInDamaged = join(damaged, 'data', 'keys', `${listName}.secret.asc`);
    const bytes = readFileSync(keyInDamaged);
    bytes[100] ^= 1;
    writeFileSync(keyInDamaged, bytes);
    restored = makeTestConfig({ relay: { host: '127.0.0.1', port: 9 }, server, lists });
    const refused = await runCli(['restore', damaged, '--config', restored.configDir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`data/keys/${listName}.secret.asc does not match its checksum`);

    // The restore into a fresh, empty data directory, with a live relay this time.
    relay = await startRelayPeer();
    restored.editServer({ relay: { host: relay.host, port: relay.port } });
    const restoring = await runCli(['restore', backupDir, '--config', restored.configDir]);
    expect(restoring.stderr).toBe('');
    expect(restoring.code).toBe(0);
    for (const file of keyFiles) expect(readFileSync(join(restored.dataDir, file)).equals(readFileSync(join(original.dataDir, file))), file).toBe(true);
    const again = await runCli(['restore', backupDir, '--config', restored.configDir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('not empty');

    daemon = await startTestDaemon({ config: restored });
    // Every copy pending in the backup is delivered, and posts the backup caught before processing go out too.
    await relay.waitForMessages(pending.length + queuedPosts * members.length, 120_000);
    const states = new Database(restored.dbFile, { readonly: true });
    const stateOf = states.prepare('SELECT state FROM outbound WHERE id = ?');
    const deadline = Date.now() + 60_000;
    let notSent = pending;
    while (notSent.length > 0 && Date.now() < deadline) {
      notSent = pending.filter((id) => (stateOf.get(id) as { state: string }).state !== 'sent');
      if (notSent.length > 0) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    states.close();
    expect(notSent).toEqual([]);

    // Every archived message exports from the restored data directory.
    const mbox = join(scratch, 'export.mbox');
    const exported = await runCli(['archive', 'export', listName, '--mbox', mbox, '--config', restored.configDir]);
    expect(exported.code).toBe(0);
    const fromLines = readFileSync(mbox, 'latin1').split('\n').filter((line) => line.startsWith('From ')).length;
    // Posts the backup caught before processing were archived by the restored daemon before their copies went out.
    expect(fromLines).toBe(archived + queuedPosts);
  });
});
