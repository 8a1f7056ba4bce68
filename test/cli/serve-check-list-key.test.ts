// The embargo command as a user runs it: check (exit codes, file:line), list-key, --help, and serve stopping on SIGTERM.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTestConfig, startTestDaemon } from '../helpers/daemon.ts';
import { runCli } from '../helpers/lists.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';


describe('embargo CLI', () => {
  const config = makeTestConfig();
  afterAll(() => config.cleanup());

  it('check: exits 0 with a summary for a valid config', async () => {
    const result = await runCli(['check', '--config', config.configDir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('OK');
    expect(result.stdout).toContain('xen-security-issues@lists.example.org');
  });

  it('check: prints file:line and the reason for a broken file and exits 1', async () => {
    const broken = makeTestConfig();
    try {
      const file = join(broken.configDir, 'lists', 'xen-security-issues-discuss.yaml');
      writeFileSync(file, 'description: broken on purpose\nkind: discussion\narchive: private\nmoderatd: true\n');
      const result = await runCli(['check', '--config', broken.configDir]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`xen-security-issues-discuss\\.yaml:4(:\\d+)?: .*moderatd`));
    } finally {
      broken.cleanup();
    }
  });

  it('list-key: prints the list public key, generating it on first use, and the same key the next time', async () => {
    const first = await runCli(['list-key', 'xen-security-issues', '--config', config.configDir]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]+-----END PGP PUBLIC KEY BLOCK-----\n$/);
    expect(first.stdout).not.toContain('PRIVATE');
    const second = await runCli(['list-key', 'xen-security-issues', '--config', config.configDir]);
    expect(second.stdout).toBe(first.stdout);
    const unknown = await runCli(['list-key', 'no-such-list', '--config', config.configDir]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no list named no-such-list');
  });

  it('--help lists the commands, each command has --help, and a usage error exits 2', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['serve', 'check', 'list-key']) expect(help.stdout).toContain(command);
    const serveHelp = await runCli(['serve', '--help']);
    expect(serveHelp.code).toBe(0);
    expect(serveHelp.stdout).toContain('--config');
    expect((await runCli(['no-such-command'])).code).toBe(2);
    expect((await runCli(['list-key'])).code).toBe(2);
  });

  it('serve: refuses to start on a broken config with file:line and exit 1', async () => {
    const broken = makeTestConfig();
    try {
      writeFileSync(broken.serverFile, 'domain: lists.example.org\nadmins: [postmaster@lists.example.org]\nsmtp: { port: "twenty" }\n');
      const result = await runCli(['serve', '--config', broken.configDir]);
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
