// membersFrom: a list inherits the members of other lists (same address, organisation, key), its own entries win, and loops or unknown names are refused with file and line.
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/loader.ts';
import { makeConfigDir } from '../helpers/config-dir.ts';
import { runCli } from '../helpers/lists.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A copy of the test fixture config (or of the shipped config/, for the tests about what it ships). */
function configDir(from?: string) {
  const dir = makeConfigDir(from ? { from } : {});
  cleanups.push(() => dir.cleanup());
  return dir;
}

const demoSharingList = `description: Private discussion of embargoed issues among members (DEMO configuration)
kind: discussion
archive: private
replyTo: list
membersFrom: [xen-security-issues]
members:
  - email: security@xenproject.example
    organisation: Xen Project Security Team (demo)
    key: ../keys/xenproject-security.asc
    roles: [recipient, moderator]
`;

describe('membersFrom', () => {
  it('the demo sharing list inherits the pre-disclosure members; its own entry for the security team wins', async () => {
    const dir = configDir();
    // The sharing list as config/ ships it (the fixture keeps its older explicit form, which other tests rely on).
    dir.write('lists/xen-security-issues-discuss.yaml', demoSharingList);
    const loaded = await loadConfig(dir.dir);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const predisclosure = loaded.config.lists.get('xen-security-issues')!;
    const sharing = loaded.config.lists.get('xen-security-issues-discuss')!;
    expect(sharing.members.map((member) => member.address).sort()).toEqual(predisclosure.members.map((member) => member.address).sort());
    for (const inherited of sharing.members.filter((member) => member.inheritedFrom)) {
      const original = predisclosure.members.find((member) => member.address === inherited.address)!;
      expect(inherited.organisation).toBe(original.organisation);
      expect(inherited.armoredKey).toBe(original.armoredKey);
      expect(inherited.fingerprint).toBe(original.fingerprint);
      expect(inherited.roles).toEqual(['recipient', 'poster']);
      expect(inherited.inheritedFrom).toBe('xen-security-issues');
    }
    const team = sharing.members.find((member) => member.address === 'security@xenproject.example')!;
    expect(team.inheritedFrom).toBeUndefined();
    expect(team.roles).toEqual(['recipient', 'moderator']);
    // embargo members says where an entry comes from.
    const shown = await runCli(['members', 'xen-security-issues-discuss', '--json', '--config', dir.dir]);
    const reports = JSON.parse(shown.stdout) as Array<{ address: string; inheritedFrom: string | null }>;
    expect(reports.find((report) => report.address === 'security@vendor-a.example')?.inheritedFrom).toBe('xen-security-issues');
    expect(reports.find((report) => report.address === 'security@xenproject.example')?.inheritedFrom).toBeNull();
  });

  it('membersFromRoles sets the inherited roles; inheritance is transitive', async () => {
    const dir = configDir();
    dir.write('lists/sharing.yaml', stringify({ kind: 'discussion', archive: 'none', membersFrom: ['xen-security-issues'] }));
    dir.write('lists/observers.yaml', stringify({ kind: 'discussion', archive: 'none', membersFrom: ['sharing'], membersFromRoles: ['recipient'] }));
    const loaded = await loadConfig(dir.dir);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const observers = loaded.config.lists.get('observers')!;
    expect(observers.members.map((member) => member.address).sort()).toEqual(loaded.config.lists.get('xen-security-issues')!.members.map((member) => member.address).sort());
    expect(new Set(observers.members.map((member) => member.roles.join(',')))).toEqual(new Set(['recipient']));
  });

  it('embargo check refuses a loop and an unknown list name, with file and line', async () => {
    const dir = configDir();
    dir.write('lists/xen-security-issues-discuss.yaml', `${dir.read('lists/xen-security-issues-discuss.yaml')}\nmembersFrom:\n  - xen-security-issues\n`);
    const predisclosure = dir.read('lists/xen-security-issues.yaml');
    dir.write('lists/xen-security-issues.yaml', `${predisclosure}\nmembersFrom:\n  - xen-security-issues-discuss\n  - no-such-list\n`);
    const lines = dir.read('lists/xen-security-issues.yaml').split('\n');
    const loopLine = lines.indexOf('  - xen-security-issues-discuss') + 1;
    const unknownLine = lines.indexOf('  - no-such-list') + 1;
    const result = await runCli(['check', '--config', dir.dir]);
    expect(result.code).not.toBe(0);
    const sharingLine = dir.read('lists/xen-security-issues-discuss.yaml').split('\n').findIndex((line) => line.trim().startsWith('- xen-security-issues')) + 1;
    // The loop is reported where it closes (whichever file the resolution reaches second), the unknown name where it is written.
    expect(result.stderr).toMatch(new RegExp(`(xen-security-issues\\.yaml:${loopLine}|xen-security-issues-discuss\\.yaml:${sharingLine}):\\d+: membersFrom makes a loop: `));
    expect(result.stderr).toContain(`xen-security-issues.yaml:${unknownLine}:5: membersFrom names list 'no-such-list', which does not exist`);
  });

  it('refuses a list that names itself, and membersFromRoles without membersFrom', async () => {
    const dir = configDir();
    dir.write('lists/self.yaml', 'kind: discussion\narchive: none\nmembersFrom: [self]\n');
    dir.write('lists/roles-only.yaml', 'kind: discussion\narchive: none\nmembersFromRoles: [recipient]\n');
    const loaded = await loadConfig(dir.dir);
    expect(loaded.ok).toBe(false);
    if (loaded.ok) return;
    expect(loaded.errors.map((error) => `${error.file.split('/').pop()}:${error.line}: ${error.reason}`)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^roles-only\.yaml:3: membersFromRoles needs membersFrom/),
        expect.stringMatching(/^self\.yaml:3: membersFrom makes a loop: self -> self/),
      ]),
    );
  });

  it('a named list whose own file is refused gives that file\'s error only, not a second one where it is named', async () => {
    const dir = configDir();
    dir.write('lists/xen-security-issues-discuss.yaml', `${dir.read('lists/xen-security-issues-discuss.yaml')}\nmembersFrom: [xen-security-issues]\n`);
    const predisclosure = dir.read('lists/xen-security-issues.yaml');
    dir.write('lists/xen-security-issues.yaml', `${predisclosure.replace('moderated: false', 'moderatd: false')}\ndiscussionList: xen-security-issues-discuss\n`);
    const loaded = await loadConfig(dir.dir);
    expect(loaded.ok).toBe(false);
    if (loaded.ok) return;
    expect(loaded.errors.map((error) => error.reason)).toEqual(["unknown key 'moderatd' (did you mean 'moderated'?)"]);
  });

  it('discussionList must name an existing discussion list', async () => {
    const dir = configDir();
    const predisclosure = dir.read('lists/xen-security-issues.yaml');
    dir.write('lists/xen-security-issues.yaml', `${predisclosure}\ndiscussionList: predisclosure-applications\n`);
    dir.write('lists/xen-security-issues-discuss.yaml', `${dir.read('lists/xen-security-issues-discuss.yaml')}\ndiscussionList: xen-security-issues\n`);
    const loaded = await loadConfig(dir.dir);
    expect(loaded.ok).toBe(false);
    if (loaded.ok) return;
    expect(loaded.errors.map((error) => error.reason)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^discussionList names list 'predisclosure-applications', which is a public list, not kind: discussion/),
        'discussionList only applies to kind: announce lists',
      ]),
    );
  });
});
