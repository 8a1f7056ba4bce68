// Upgrades: a data directory made by an earlier release (before the advisories tables) is migrated at start, and what it held is still served and delivered.
import { chmodSync, cpSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { migrations } from '../../src/schema.ts';
import { makeTestConfig, publicListOf, repoRoot, startTestDaemon, type TestConfig, type TestDaemon } from '../helpers/daemon.ts';
import { runCli } from '../helpers/lists.ts';
import { startRelayPeer, type RelayPeer } from '../helpers/relay.ts';

// Made by commit 74d3819 (before issue 11's migrations): one post to the public list archived, its copy deferred
// because the relay was down. The list config below is the one it was made with.
const fixture = join(repoRoot, 'test/fixtures/before-advisories/data');
const lists = { 'predisclosure-applications': publicListOf([{ email: 'security@vendor-a.example', keyFile: 'vendor-a.asc' }]) };

describe('a database from an earlier release', () => {
  let config: TestConfig;
  let relay: RelayPeer;
  let daemon: TestDaemon | null = null;
  afterAll(async () => {
    await daemon?.stop();
    await relay?.close();
    config?.cleanup();
  });

  it('is migrated at start; its archive exports and its pending copy is delivered', async () => {
    relay = await startRelayPeer();
    config = makeTestConfig({ relay: { host: relay.host, port: relay.port }, lists });
    cpSync(fixture, config.dataDir, { recursive: true });
    chmodSync(config.dataDir, 0o700);
    chmodSync(join(config.dataDir, 'keys'), 0o700);
    for (const file of readdirSync(join(config.dataDir, 'keys'))) chmodSync(join(config.dataDir, 'keys', file), 0o600);
    const before = new Database(config.dbFile, { readonly: true });
    const applied = (before.prepare('SELECT id FROM schema_migrations').all() as Array<{ id: string }>).map((row) => row.id);
    before.close();
    const missing = migrations.map((migration) => migration.id).filter((id) => !applied.includes(id));
    expect(missing.length, 'the fixture predates some migrations').toBeGreaterThan(0);

    daemon = await startTestDaemon({ config });
    const after = (daemon.daemon!.db.prepare('SELECT id FROM schema_migrations').all() as Array<{ id: string }>).map((row) => row.id);
    expect(after.sort()).toEqual(migrations.map((migration) => migration.id).sort());

    await relay.waitForMessages(1, 60_000);
    expect(relay.deliveredTo('security@vendor-a.example')[0].raw.toString('latin1')).toContain('made by the earlier release');

    const mbox = join(config.root, 'export.mbox');
    const exported = await runCli(['archive', 'export', 'predisclosure-applications', '--mbox', mbox, '--config', config.configDir]);
    expect(exported.code).toBe(0);
    expect(readFileSync(mbox, 'latin1')).toContain('Message-ID: <fixture-1@vendor.example>');
  });
});
