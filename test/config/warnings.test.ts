// `embargo check` warnings: an admin on the lists' own domain, a DKIM selector without its key, an unset relay password variable; and relay.auth's strict shape.
import { describe, expect, it } from 'vitest';
import { makeTestConfig } from '../helpers/daemon.ts';
import { runCli } from '../helpers/lists.ts';

describe('embargo check warnings', () => {
  it('warns (exit 0) with file:line when an admin is on the lists\' domain, a DKIM key is missing, or a relay password variable is unset', async () => {
    const config = makeTestConfig({
      server: {
        admins: ['security-team@example.net', 'postmaster@lists.example.org'],
        dkim: { selector: 'nokey' },
        relay: { auth: { user: 'lists', passEnv: 'EMBARGO_TEST_UNSET_RELAY_PASSWORD' } },
      },
    });
    try {
      const result = await runCli(['check', '--config', config.configDir]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('OK');
      const warnings = result.stderr.trim().split('\n');
      expect(warnings).toHaveLength(3);
      expect(warnings[0]).toMatch(new RegExp(`^${config.serverFile}:\\d+: warning: admin postmaster@lists\\.example\\.org is on the lists' own domain`));
      expect(warnings[1]).toMatch(/warning: dkim\.selector is nokey but .*dkim\/nokey\.key does not exist/);
      expect(warnings[2]).toContain('relay.auth.passEnv names EMBARGO_TEST_UNSET_RELAY_PASSWORD, which is not set');
      const line = Number(/:(\d+): warning: admin/.exec(warnings[0])![1]);
      const { readFileSync } = await import('node:fs');
      expect(readFileSync(config.serverFile, 'utf8').split('\n')[line - 1]).toContain('postmaster@lists.example.org');

      const json = await runCli(['check', '--json', '--config', config.configDir]);
      expect((JSON.parse(json.stdout) as { warnings: unknown[] }).warnings).toHaveLength(3);
    } finally {
      config.cleanup();
    }
  });

  it('says nothing when the admins are elsewhere and nothing is missing', async () => {
    const config = makeTestConfig({ server: { admins: ['security-team@example.net'] } });
    try {
      const result = await runCli(['check', '--config', config.configDir]);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
    } finally {
      config.cleanup();
    }
  });

  it('warns when an announce list publishes to a public list but has no advisoryPattern (nothing would ever be published)', async () => {
    const announce = { kind: 'announce', archive: 'private', publishTo: 'xen-announce', members: [{ email: 'team@example.net', roles: ['poster', 'recipient'] }] };
    const config = makeTestConfig({
      server: { admins: ['security-team@example.net'] },
      lists: { 'xen-security-issues': announce, 'xen-announce': { kind: 'public', archive: 'public', members: [] } },
    });
    try {
      const result = await runCli(['check', '--config', config.configDir]);
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(/xen-security-issues\.yaml:\d+: warning: publishTo is set but advisoryPattern is not/);
    } finally {
      config.cleanup();
    }
    const fixed = makeTestConfig({
      server: { admins: ['security-team@example.net'] },
      lists: { 'xen-security-issues': { ...announce, advisoryPattern: 'XSA-[0-9]+' }, 'xen-announce': { kind: 'public', archive: 'public', members: [] } },
    });
    try {
      expect((await runCli(['check', '--config', fixed.configDir])).stderr).toBe('');
    } finally {
      fixed.cleanup();
    }
  });

  it('refuses relay.auth with two password sources, or with a passFile that does not exist', async () => {
    const config = makeTestConfig({ server: { relay: { auth: { user: 'lists', pass: 'inline', passEnv: 'X' } } } });
    try {
      const both = await runCli(['check', '--config', config.configDir]);
      expect(both.code).toBe(1);
      expect(both.stderr).toMatch(/server\.yaml:\d+(:\d+)?: .*exactly one of pass, passFile or passEnv/);
    } finally {
      config.cleanup();
    }
    const withFile = makeTestConfig({ server: { relay: { auth: { user: 'lists', passFile: 'no-such-file' } } } });
    try {
      const missing = await runCli(['check', '--config', withFile.configDir]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/server\.yaml:\d+(:\d+)?: .*no-such-file not found/);
    } finally {
      withFile.cleanup();
    }
  });
});
