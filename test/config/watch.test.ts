// watchConfig: valid edits reach onReload quickly, bad edits and a vanished directory are refused, and the last good config stays.
import { renameSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loader.ts';
import type { Config, ConfigError } from '../../src/config/types.ts';
import { watchConfig } from '../../src/config/watch.ts';
import type { ReloadInfo } from '../../src/config/watch.ts';
import { makeConfigDir } from '../helpers/config-dir.ts';
import type { ConfigDir } from '../helpers/config-dir.ts';

type Event = { kind: 'reload'; config: Config; info: ReloadInfo; at: number } | { kind: 'invalid'; errors: ConfigError[]; at: number };

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** Starts a watcher on a fresh copy of the shipped config, recording every callback. */
async function watched(options: { passInitial?: boolean } = {}) {
  const dir = makeConfigDir();
  cleanups.push(() => dir.cleanup());
  const loaded = await loadConfig(dir.dir);
  if (!loaded.ok) throw new Error('shipped config did not load');
  const events: Event[] = [];
  const watcher = watchConfig(dir.dir, {
    initial: options.passInitial === false ? undefined : loaded.config,
    onReload: (config, info) => events.push({ kind: 'reload', config, info, at: Date.now() }),
    onInvalid: (errors) => events.push({ kind: 'invalid', errors, at: Date.now() }),
  });
  cleanups.push(() => watcher.close());
  // Let the watcher take its starting stamp before the test edits anything.
  await sleep(150);
  const next = async <K extends Event['kind']>(kind: K, timeoutMs = 5000): Promise<Extract<Event, { kind: K }>> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const index = events.findIndex((event) => event.kind === kind);
      if (index >= 0) {
        const [event] = events.splice(index, 1);
        return event as Extract<Event, { kind: K }>;
      }
      if (events.length > 0) throw new Error(`expected ${kind}, got ${JSON.stringify(events.map((event) => event.kind))}`);
      await sleep(25);
    }
    throw new Error(`no ${kind} within ${timeoutMs} ms`);
  };
  return { dir, events, next, watcher, initial: loaded.config };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const listFile = 'lists/xen-security-issues-discuss.yaml';

describe('hot reload', () => {
  it('applies a valid edit within two seconds', async () => {
    const { dir, next } = await watched();
    const started = Date.now();
    dir.write(listFile, dir.read(listFile).replace('moderated: false', 'moderated: true'));
    const event = await next('reload');
    const elapsed = event.at - started;
    expect(elapsed).toBeLessThan(2000);
    expect(event.config.lists.get('xen-security-issues-discuss')!.moderated).toBe(true);
    expect(event.info).toEqual({ restartRequired: [], restartMessage: null });
    console.log(`hot reload: edit applied after ${elapsed} ms`);
  });

  it('refuses a bad edit with file and line, keeps the last good config, and reports the fix', async () => {
    const { dir, next, events } = await watched();
    const good = dir.read(listFile);
    dir.write(listFile, good.replace('moderated: false', 'moderatd: false'));
    const refused = await next('invalid');
    expect(refused.errors).toHaveLength(1);
    expect(refused.errors[0]).toMatchObject({ file: dir.path(listFile), line: good.split('\n').findIndex((line) => line.startsWith('moderated:')) + 1 });
    expect(refused.errors[0]!.reason).toMatch(/^unknown key 'moderatd' \(did you mean 'moderated'\?\)$/);

    await sleep(600);
    expect(events).toEqual([]);

    dir.write(listFile, good.replace('moderated: false', 'moderated: true'));
    const fixed = await next('reload');
    expect(fixed.config.lists.get('xen-security-issues-discuss')!.moderated).toBe(true);
  });

  it('follows editors that write a temporary file and rename it over the original', async () => {
    const { dir, next } = await watched();
    dir.writeByRename('server.yaml', dir.read('server.yaml').replace('postmaster@lists.example.org', 'security-admin@lists.example.org'));
    const event = await next('reload');
    expect(event.config.server.admins).toEqual(['security-admin@lists.example.org']);
    // The replaced file (a new inode) is still watched.
    dir.writeByRename('server.yaml', dir.read('server.yaml').replace('security-admin@', 'root@'));
    expect((await next('reload')).config.server.admins).toEqual(['root@lists.example.org']);
  });

  it('sees lists added and removed, and key files changed', async () => {
    const { dir, next } = await watched();
    dir.write('lists/xen-announce.yaml', 'kind: public\narchive: public\n');
    expect([...(await next('reload')).config.lists.keys()]).toContain('xen-announce');

    dir.remove('lists/xen-announce.yaml');
    expect([...(await next('reload')).config.lists.keys()]).not.toContain('xen-announce');

    // A member's new key (here: vendor B's key in vendor A's file) applies without touching the list files.
    dir.write('keys/vendor-a.asc', dir.read('keys/vendor-b.asc'));
    const event = await next('reload');
    const member = event.config.lists.get('xen-security-issues')!.members.find((candidate) => candidate.address === 'security@vendor-a.example')!;
    expect(member.armoredKey).toBe(dir.read('keys/vendor-b.asc'));
  });

  it('keeps the last good config when the config directory is removed, and picks it up when it returns', async () => {
    const { dir, next, events } = await watched();
    const moved = `${dir.dir}.moved`;
    renameSync(dir.dir, moved);
    const refused = await next('invalid');
    expect(refused.errors.map((error) => error.reason)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^file not found/), expect.stringMatching(/^the lists\/ directory is missing/)]),
    );
    await sleep(1500);
    expect(events).toEqual([]);

    renameSync(moved, dir.dir);
    const back = await next('reload', 6000);
    expect(back.config.lists.size).toBe(3);

    // And edits in the returned directory are watched again.
    dir.write(listFile, dir.read(listFile).replace('moderated: false', 'moderated: true'));
    expect((await next('reload')).config.lists.get('xen-security-issues-discuss')!.moderated).toBe(true);

    // Deleted outright (rm -rf), not moved: refused again, nothing reloaded.
    rmSync(dir.dir, { recursive: true, force: true });
    expect((await next('invalid')).errors.some((error) => error.file === dir.path('server.yaml'))).toBe(true);
    await sleep(1200);
    expect(events).toEqual([]);
  });

  it('reports listen address and dataDir changes as needing a restart and keeps their running values', async () => {
    const { dir, next } = await watched();
    const text = dir.read('server.yaml').replace('port: 2525', 'port: 2600').replace('dataDir: ../data', 'dataDir: ../other-data').replace('port: 2526', 'port: 2527');
    dir.write('server.yaml', text);
    const event = await next('reload');
    expect(event.info.restartRequired).toEqual([
      { field: 'smtp.port', running: '2525', configured: '2600' },
      { field: 'dataDir', running: JSON.stringify(event.config.server.dataPath), configured: expect.stringContaining('other-data') },
    ]);
    expect(event.info.restartMessage).toMatch(/^restart needed to apply smtp\.port \(running 2525, configured 2600\), dataDir/);
    expect(event.config.server.smtp.port).toBe(2525);
    expect(event.config.server.dataDir).toBe('../data');
    // Everything else applies.
    expect(event.config.server.relay.port).toBe(2527);
  });

  it('does not call back for a save without a change, nor after close()', async () => {
    const { dir, events, watcher } = await watched();
    dir.write(listFile, dir.read(listFile));
    await sleep(1300);
    expect(events).toEqual([]);
    watcher.close();
    dir.write(listFile, dir.read(listFile).replace('moderated: false', 'moderated: true'));
    await sleep(1300);
    expect(events).toEqual([]);
  });

  it('without an initial config, takes its first load as the starting point', async () => {
    const { dir, events, next } = await watched({ passInitial: false });
    await sleep(300);
    expect(events).toEqual([]);
    dir.write(listFile, dir.read(listFile).replace('moderated: false', 'moderated: true'));
    expect((await next('reload')).config.lists.get('xen-security-issues-discuss')!.moderated).toBe(true);
  });
});
