// The embargo command as an admin runs it: members, keys check, sink, and --help / --json / exit codes across every command
// (in-process where a command ends by itself; each test still runs the real binary where the process itself matters).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/database.ts';
import { migrations } from '../../src/schema.ts';
import { runCliInProcess } from '../helpers/cli.ts';
import { runCli } from '../helpers/lists.ts';
import { createGpgHome, type GpgHome } from '../helpers/gpg.ts';
import { makeTestConfig, repoRoot, type TestConfig } from '../helpers/daemon.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const embargoBin = join(repoRoot, 'bin/embargo.js');


describe('embargo members and keys check', () => {
  let gpg: GpgHome;
  let good: TestConfig;
  let bad: TestConfig;
  let expiredFingerprint: string;

  beforeAll(async () => {
    good = makeTestConfig();
    gpg = await createGpgHome();
    // Made 3 days ago, valid for 1 day: expired since the day before yesterday.
    const expired = await gpg.generateKey({ address: 'security@vendor-c.example', expire: '1d', at: new Date(Date.now() - 3 * 86_400_000) });
    expiredFingerprint = expired.fingerprint;
    bad = makeTestConfig({
      files: { 'keys/vendor-c.asc': await gpg.exportPublic(expired.fingerprint) },
      lists: {
        'xen-security-issues-discuss': stringify({
          kind: 'discussion',
          archive: 'private',
          members: [
            { email: 'security@vendor-a.example', organisation: 'Vendor A (demo)', key: '../keys/vendor-a.asc', roles: ['recipient'] },
            { email: 'security@vendor-c.example', organisation: 'Vendor C', key: '../keys/vendor-c.asc', roles: ['recipient'] },
          ],
        }),
      },
    });
    // A bounce record, to see the bounce state in `members`.
    const db = openDatabase(bad.dbFile, migrations);
    db.prepare(
      `INSERT INTO member_bounces (list, address, score, scored_at, bounces_total, last_bounce_at, last_reason, suspended_at) VALUES (?, ?, 6, ?, 6, ?, '5.1.1 user unknown', ?)`,
    ).run('xen-security-issues-discuss', 'security@vendor-a.example', Date.now(), Date.now(), Date.now());
    db.close();
  }, 30_000);

  afterAll(async () => {
    good?.cleanup();
    bad?.cleanup();
    await gpg?.cleanup();
  });

  it('members NAME: organisation, roles, fingerprint, expiry, usability and bounce state per member', async () => {
    const result = await runCliInProcess(['members', 'xen-security-issues', '--config', good.configDir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('security@xenproject.example  (Xen Project Security Team (demo))');
    expect(result.stdout).toContain('A07C4A68B2460BC1ED747884839D7163069C6094');
    expect(result.stdout).toMatch(/roles: +poster, recipient/);
    expect(result.stdout).toMatch(/expires: +never/);
    expect(result.stdout).toMatch(/usable: +yes/);
    expect(result.stdout).toMatch(/delivery: +no bounces/);

    const json = await runCliInProcess(['members', 'xen-security-issues-discuss', '--config', bad.configDir, '--json']);
    expect(json.code).toBe(0);
    const members = JSON.parse(json.stdout) as Array<Record<string, unknown> & { problems: Array<{ code: string; blocking: boolean }>; bounce: { suspended: boolean } | null }>;
    expect(members.map((member) => member.address)).toEqual(['security@vendor-a.example', 'security@vendor-c.example']);
    const [vendorA, vendorC] = members;
    expect(vendorA).toMatchObject({ organisation: 'Vendor A (demo)', roles: ['recipient'], fingerprint: '560D94A6C9890C932B41595144C707ABA828ACD7', expiresAt: null, usable: true });
    expect(vendorA.bounce).toMatchObject({ suspended: true, bouncesTotal: 6, lastReason: '5.1.1 user unknown' });
    expect(vendorC).toMatchObject({ fingerprint: expiredFingerprint, usable: false, bounce: null });
    expect(new Date(vendorC.expiresAt as string).getTime()).toBeLessThan(Date.now());
    expect(vendorC.problems).toContainEqual(expect.objectContaining({ code: 'expired', blocking: true }));

    const text = await runCliInProcess(['members', 'xen-security-issues-discuss', '--config', bad.configDir]);
    expect(text.stdout).toMatch(/delivery: +SUSPENDED since/);
    expect(text.stdout).toMatch(/usable: +NO/);
    expect(text.stdout).toMatch(/problem: +BLOCKING expired:/);

    const unknown = await runCliInProcess(['members', 'no-such-list', '--config', good.configDir]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no list named no-such-list');
  });

  it('keys check: exit 0 when every key is usable, 1 with the blocking problems listed', async () => {
    const ok = await runCliInProcess(['keys', 'check', '--config', good.configDir]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^all \d+ member keys are usable\n$/);
    const okJson = JSON.parse((await runCliInProcess(['keys', 'check', '--json', '--config', good.configDir])).stdout) as { problems: unknown[]; blocking: number };
    expect(okJson).toMatchObject({ problems: [], blocking: 0 });

    const failing = await runCliInProcess(['keys', 'check', '--config', bad.configDir]);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/xen-security-issues-discuss {2}security@vendor-c\.example {2}BLOCKING {2}expired: /);
    const json = await runCliInProcess(['keys', 'check', '--json', '--config', bad.configDir]);
    expect(json.code).toBe(1);
    const parsed = JSON.parse(json.stdout) as { blocking: number; problems: Array<{ list: string; address: string; code: string; blocking: boolean; fingerprint: string }> };
    expect(parsed.blocking).toBe(1);
    expect(parsed.problems).toContainEqual(
      expect.objectContaining({ list: 'xen-security-issues-discuss', address: 'security@vendor-c.example', code: 'expired', blocking: true, fingerprint: expiredFingerprint }),
    );
  });
});

describe('embargo sink (development relay)', () => {
  it('stores each message as a .eml file, prints one summary per message, and stops with exit 0 on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'embargo-sink-test-'));
    const child = spawn(process.execPath, [embargoBin, 'sink', '--port', '0', '--dir', dir, '--json'], { cwd: repoRoot, env: { ...process.env, CI: '1' } });
    try {
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const port = await new Promise<number>((resolve, reject) => {
        // A Node and tsx start: seconds when idle, far more on a loaded machine.
        const timer = setTimeout(() => reject(new Error(`sink did not start: ${stderr}`)), 60_000);
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          const match = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
          if (match) {
            clearTimeout(timer);
            resolve(Number(match[1]));
          }
        });
      });
      expect(stderr).toContain('development only');
      const raw = makeMessage({ from: 'list-bounces@lists.example.org', to: 'security@vendor-a.example', subject: 'Encrypted message' });
      const sent = await sendMail({ port, from: 'list-bounces@lists.example.org', to: ['security@vendor-a.example', 'other@vendor-b.example'], raw });
      expect(sent.ok).toBe(true);
      for (let waited = 0; !stdout.includes('\n') && waited < 5_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      const summary = JSON.parse(stdout.split('\n')[0]) as { file: string; from: string; to: string[]; size: number; subject: string; encrypted: boolean };
      expect(summary).toMatchObject({ from: 'list-bounces@lists.example.org', to: ['security@vendor-a.example', 'other@vendor-b.example'], subject: 'Encrypted message', encrypted: false });
      expect(summary.file.startsWith(dir)).toBe(true);
      expect(summary.file.endsWith('-security@vendor-a.example+1.eml')).toBe(true);
      expect(readFileSync(summary.file, 'utf8')).toContain('Hello from the test suite.');
      expect(readFileSync(join(dir, 'index.jsonl'), 'utf8').trim()).toBe(JSON.stringify(summary));
      const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('refuses to listen anywhere but loopback', async () => {
    const result = await runCliInProcess(['sink', '--host', '0.0.0.0', '--port', '0', '--dir', join(tmpdir(), 'embargo-sink-never')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('loopback only');
    expect(existsSync(join(tmpdir(), 'embargo-sink-never'))).toBe(false);
  });
});

describe('every command: --help, --json parses, exit codes', () => {
  const config = makeTestConfig();
  afterAll(() => config.cleanup());

  const commands = [
    ['serve'], ['check'], ['list-key'], ['members'], ['keys'], ['keys', 'check'], ['held'], ['approve'], ['reject'],
    ['queue'], ['queue', 'retry'], ['queue', 'purge'], ['bounces'], ['bounces', 'reset'], ['archive'], ['archive', 'export'], ['archive', 'pending'], ['sink'],
  ];

  it('every command answers --help with exit 0, and names --config where it reads the config', async () => {
    // The real binary once; then each command in-process (a process each cost 4-10 s on a loaded machine).
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const name of ['serve', 'check', 'list-key', 'members', 'keys', 'held', 'approve', 'reject', 'queue', 'bounces', 'archive', 'sink']) {
      expect(top.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    }
    for (const args of commands) {
      const result = await runCliInProcess([...args, '--help']);
      const command = args.join(' ');
      expect(result.code, command).toBe(0);
      expect(result.stdout, command).toMatch(/^Usage: embargo /);
      // Commands that open the config say how to point them elsewhere (subcommands of queue/bounces inherit it).
      if (!['sink', 'keys', 'archive', 'queue retry', 'queue purge', 'bounces reset'].includes(command)) expect(result.stdout, command).toContain('--config <dir>');
    }
  }, 60_000);

  it('--json output of every command parses', async () => {
    const runs = [
      ['members', 'xen-security-issues', '--json'],
      ['keys', 'check', '--json'],
      ['held', 'xen-security-issues-discuss', '--json'],
      ['queue', '--json'],
      ['bounces', '--json'],
      ['check', '--json'],
      ['archive', 'pending', '--json'],
    ];
    for (const args of runs) {
      const result = await runCliInProcess([...args, '--config', config.configDir]);
      expect(result.code, args.join(' ')).toBe(0);
      expect(() => JSON.parse(result.stdout), args.join(' ')).not.toThrow();
    }
  }, 60_000);

  it('exit codes: 2 for usage errors, 1 for an invalid config or a failed command', async () => {
    // The real process once, so the exit code is seen to reach the shell; the rest in-process, for speed.
    expect((await runCli(['no-such-command'])).code).toBe(2);
    expect((await runCliInProcess(['no-such-command'])).code).toBe(2);
    expect((await runCliInProcess(['members'])).code).toBe(2);
    expect((await runCliInProcess(['keys', 'check', '--no-such-option'])).code).toBe(2);
    expect((await runCliInProcess(['sink', '--port', 'not-a-port'])).code).toBe(2);
    expect((await runCliInProcess(['approve', 'NOSUCHID', '--config', config.configDir])).code).toBe(1);
    const broken = makeTestConfig({ lists: { broken: 'kind: announce\narchive: private\nmembrs: []\n' } });
    try {
      for (const args of [['members', 'broken'], ['keys', 'check'], ['check']]) {
        const result = await runCliInProcess([...args, '--config', broken.configDir]);
        expect(result.code, args.join(' ')).toBe(1);
        expect(result.stderr, args.join(' ')).toMatch(/broken\.yaml:3:\d+: .*membrs/);
      }
      const json = await runCliInProcess(['check', '--json', '--config', broken.configDir]);
      expect(json.code).toBe(1);
      const parsed = JSON.parse(json.stdout) as { ok: boolean; errors: Array<{ file: string; line: number; reason: string }> };
      expect(parsed.ok).toBe(false);
      expect(parsed.errors).toContainEqual(expect.objectContaining({ line: 3, reason: expect.stringContaining('membrs') }));
    } finally {
      broken.cleanup();
    }
  }, 60_000);
});
