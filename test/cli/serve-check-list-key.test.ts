// The embargo command as a user runs it: check (exit codes, file:line), list-key, --help, and serve stopping on SIGTERM.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTestConfig, repoRoot, startTestDaemon } from '../helpers/daemon.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const run = promisify(execFile);

async function embargo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(repoRoot, 'bin/embargo.js'), ...args], { cwd: repoRoot, env: { ...process.env, CI: '1' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('embargo CLI', () => {
  const config = makeTestConfig();
  afterAll(() => config.cleanup());

  it('check: exits 0 with a summary for a valid config', async () => {
    const result = await embargo(['check', '--config', config.configDir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('OK');
    expect(result.stdout).toContain('xen-security-issues@lists.example.org');
  });

  it('check: prints file:line and the reason for a broken file and exits 1', async () => {
    const broken = makeTestConfig();
    try {
      const file = join(broken.configDir, 'lists', 'xen-security-issues-discuss.yaml');
      writeFileSync(file, 'description: broken on purpose\nkind: discussion\narchive: private\nmoderatd: true\n');
      const result = await embargo(['check', '--config', broken.configDir]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`xen-security-issues-discuss\\.yaml:4(:\\d+)?: .*moderatd`));
    } finally {
      broken.cleanup();
    }
  });

  it('list-key: prints the list public key, generating it on first use, and the same key the next time', async () => {
    const first = await embargo(['list-key', 'xen-security-issues', '--config', config.configDir]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]+-----END PGP PUBLIC KEY BLOCK-----\n$/);
    expect(first.stdout).not.toContain('PRIVATE');
    const second = await embargo(['list-key', 'xen-security-issues', '--config', config.configDir]);
    expect(second.stdout).toBe(first.stdout);
    const unknown = await embargo(['list-key', 'no-such-list', '--config', config.configDir]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no list named no-such-list');
  });

  it('--help lists the commands, each command has --help, and a usage error exits 2', async () => {
    const help = await embargo(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['serve', 'check', 'list-key']) expect(help.stdout).toContain(command);
    const serveHelp = await embargo(['serve', '--help']);
    expect(serveHelp.code).toBe(0);
    expect(serveHelp.stdout).toContain('--config');
    expect((await embargo(['no-such-command'])).code).toBe(2);
    expect((await embargo(['list-key'])).code).toBe(2);
  });

  it('serve: refuses to start on a broken config with file:line and exit 1', async () => {
    const broken = makeTestConfig();
    try {
      writeFileSync(broken.serverFile, 'domain: lists.example.org\nadmins: [postmaster@lists.example.org]\nsmtp: { port: "twenty" }\n');
      const result = await embargo(['serve', '--config', broken.configDir]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/server\.yaml:3(:\d+)?: /);
    } finally {
      broken.cleanup();
    }
  });

  it('serve: accepts mail, and stops cleanly with exit 0 on SIGTERM', async () => {
    const daemon = await startTestDaemon({ mode: 'child', config });
    const result = await sendMail({ port: daemon.smtpPort, from: 'a@example.net', to: ['xen-security-issues@lists.example.org'], raw: makeMessage() });
    expect(result.code).toBe(250);
    const exited = new Promise<number | null>((resolve) => daemon.child!.once('exit', (code) => resolve(code)));
    await daemon.stop({ keepFiles: true });
    expect(await exited).toBe(0);
    expect(daemon.logs().some((line) => line.msg === 'stopped')).toBe(true);
  });
});
