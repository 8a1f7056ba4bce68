// The CLI's command table: every entry loads the command it names, and --help lists them all without loading any of them.
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/main.ts';
import { repoRoot } from '../helpers/daemon.ts';
import { runCli } from '../helpers/lists.ts';

// What the daemon needs and --help must not pay for: OpenPGP, SMTP, SQLite, and the daemon's own graph.
const heavy = ['/node_modules/openpgp/', '/node_modules/smtp-server/', '/node_modules/nodemailer/', '/node_modules/better-sqlite3/', '/dist/daemon.js', '/dist/cli/commands/'];
const forbidHeavy = { nodeArgs: ['--import', join(repoRoot, 'test/helpers/forbid-modules.mjs')], env: { EMBARGO_FORBID_MODULES: heavy.join(',') } };

describe('embargo command table', () => {
  it.each(commands.map((entry) => [entry.name, entry] as const))('%s: its loader registers a command of that name', async (name, entry) => {
    const program = new Command();
    (await entry.load())(program);
    expect(program.commands.map((command) => command.name())).toContain(name);
  });

  it('every top-level command a module registers has its own entry (else it could not be run)', async () => {
    const names = new Set(commands.map((entry) => entry.name));
    for (const entry of commands) {
      const program = new Command();
      (await entry.load())(program);
      for (const command of program.commands) expect(names, `${command.name()} (registered with ${entry.name})`).toContain(command.name());
    }
  });

  it('embargo --help lists every command and loads no command module, OpenPGP, SMTP or SQLite', async () => {
    const result = await runCli(['--help'], forbidHeavy);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    for (const entry of commands) expect(result.stdout).toMatch(new RegExp(`^  ${entry.name}\\b`, 'm'));
  });

  it('the guard works: a command that needs OpenPGP fails under it', async () => {
    const result = await runCli(['members', 'xen-security-issues'], forbidHeavy);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('forbidden module loaded');
  });

  it('an unknown command is a usage error (exit 2) that shows the commands', async () => {
    const result = await runCli(['no-such-command']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown command 'no-such-command'");
    expect(result.stderr).toContain('members');
  });

  it('embargo help queue and embargo queue --help show the full options of that command', async () => {
    for (const args of [['help', 'queue'], ['queue', '--help']]) {
      const result = await runCli(args);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('--include-sent');
    }
  });
});
