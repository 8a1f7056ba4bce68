// loadConfig: the shipped config loads, and every kind of mistake is reported at the right file, line and column with a clear reason.
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatConfigErrors, loadConfig } from '../../src/config/loader.ts';
import type { Config, ConfigError } from '../../src/config/types.ts';
import { fixtureConfig, makeConfigDir, minimalServerYaml } from '../helpers/config-dir.ts';

// The shipped demo config/ itself: only this file's tests are about it; every other test copies test/fixtures/config.
const shippedConfig = fileURLToPath(new URL('../../config', import.meta.url));
import type { ConfigDir } from '../helpers/config-dir.ts';

let current: ConfigDir | null = null;
afterEach(() => {
  current?.cleanup();
  current = null;
});

/** A config dir with a minimal server.yaml, the fixture's demo keys, and the given list files. */
function configWith(lists: Record<string, string>, server = minimalServerYaml): ConfigDir {
  current = makeConfigDir({ empty: true });
  current.write('server.yaml', server);
  for (const name of ['vendor-a', 'vendor-b', 'xenproject-security']) {
    current.write(`keys/${name}.asc`, readFileSync(path.join(fixtureConfig, 'keys', `${name}.asc`), 'utf8'));
  }
  current.write('lists/.keep', '');
  for (const [file, text] of Object.entries(lists)) current.write(`lists/${file}`, text);
  return current;
}

async function errorsOf(dir: ConfigDir): Promise<ConfigError[]> {
  const result = await loadConfig(dir.dir);
  if (result.ok) throw new Error('expected the config to be refused, but it loaded');
  return result.errors;
}

async function configOf(dir: ConfigDir): Promise<Config> {
  const result = await loadConfig(dir.dir);
  if (!result.ok) throw new Error(`expected the config to load:\n${formatConfigErrors(result.errors)}`);
  return result.config;
}

/** One armored block holding several keys, the way `gpg --export --armor A B` writes it (real GnuPG, temporary home). */
function exportWithGpg(names: string[]): string {
  const home = mkdtempSync(path.join(tmpdir(), 'embargo-gpg-'));
  try {
    for (const name of names) execFileSync('gpg', ['--homedir', home, '--batch', '--quiet', '--import', path.join(fixtureConfig, 'keys', `${name}.asc`)], { stdio: 'pipe' });
    return execFileSync('gpg', ['--homedir', home, '--batch', '--armor', '--export'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

function expectOneError(errors: ConfigError[], file: string, line: number, reason: RegExp, column?: number): void {
  const matching = errors.filter((error) => error.file === file && reason.test(error.reason));
  expect(matching, `errors were:\n${formatConfigErrors(errors)}`).toHaveLength(1);
  expect(matching[0]!.line).toBe(line);
  if (column !== undefined) expect(matching[0]!.column).toBe(column);
}

const announceList = `description: test announce
kind: announce
archive: private
members:
  - email: security@xenproject.example
    key: ../keys/xenproject-security.asc
    roles: [poster, recipient]
  - email: security@vendor-a.example
    key: ../keys/vendor-a.asc
`;

describe('the shipped config', () => {
  it('loads with its three lists, demo members and keys', async () => {
    const result = await loadConfig(shippedConfig);
    if (!result.ok) throw new Error(formatConfigErrors(result.errors));
    const { server, lists } = result.config;
    expect(server.domain).toBe('lists.example.org');
    expect(server.smtp).toMatchObject({ host: '127.0.0.1', port: 2525 });
    expect(server.relay).toMatchObject({ host: '127.0.0.1', port: 2526 });
    expect(server.http).toMatchObject({ host: '127.0.0.1', port: 8025 });
    expect(server.admins).toEqual(['postmaster@lists.example.org']);
    expect(server.dataPath).toBe(path.resolve(shippedConfig, '..', 'data'));
    expect(server.file).toBe(path.join(shippedConfig, 'server.yaml'));
    expect([...lists.keys()]).toEqual(['predisclosure-applications', 'xen-security-issues', 'xen-security-issues-discuss']);

    const announce = lists.get('xen-security-issues')!;
    expect(announce).toMatchObject({ kind: 'announce', archive: 'private', address: 'xen-security-issues@lists.example.org' });
    expect(announce.file).toBe(path.join(shippedConfig, 'lists', 'xen-security-issues.yaml'));
    expect(announce.members.map((member) => member.address)).toEqual([
      'security@xenproject.example',
      'security@vendor-a.example',
      'security@vendor-b.example',
    ]);
    const team = announce.members[0]!;
    expect(team.roles).toEqual(['poster', 'recipient']);
    expect(team.armoredKey).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    expect(team.keySource).toBe(path.join(shippedConfig, 'keys', 'xenproject-security.asc'));

    expect(lists.get('xen-security-issues-discuss')).toMatchObject({ kind: 'discussion', archive: 'private', membersFrom: ['xen-security-issues'] });
    expect(announce).toMatchObject({ advisoryPattern: 'XSA-[0-9]+' });
    expect(lists.get('predisclosure-applications')!.info).toContain('Who is eligible');
    const applications = lists.get('predisclosure-applications')!;
    expect(applications).toMatchObject({ kind: 'public', archive: 'public' });
    // The shipped config shows both ways to name a key: this member uses a fingerprint.
    expect(applications.members[0]).toMatchObject({
      address: 'security@xenproject.example',
      fingerprint: 'A07C4A68B2460BC1ED747884839D7163069C6094',
      keySource: path.join(shippedConfig, 'keys', 'xenproject-security.asc'),
      armoredKey: team.armoredKey,
    });
  });

  it('ships public keys only in config/keys, and the demo secret keys only under examples/', async () => {
    for (const name of ['vendor-a', 'vendor-b', 'xenproject-security']) {
      const publicKey = readFileSync(path.join(shippedConfig, 'keys', `${name}.asc`), 'utf8');
      expect(publicKey).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
      expect(publicKey).not.toContain('PRIVATE KEY');
      const secretKey = readFileSync(path.join(shippedConfig, '..', 'examples', 'demo-keys', `${name}.secret.asc`), 'utf8');
      expect(secretKey).toContain('-----BEGIN PGP PRIVATE KEY BLOCK-----');
    }
    expect(readFileSync(path.join(shippedConfig, '..', 'examples', 'demo-keys', 'README.md'), 'utf8')).toMatch(/DEMO ONLY/);
  });
});

describe('errors name file, line, column and reason', () => {
  it('unknown key in server.yaml, with a suggestion', async () => {
    const dir = configWith({ 'a.yaml': announceList }, minimalServerYaml.replace('  port: 2525', '  prot: 2525'));
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('server.yaml'), 5, /^unknown key 'prot' in smtp \(did you mean 'port'\?\)$/, 3);
  });

  it('unknown top-level key in a list file', async () => {
    const dir = configWith({ 'a.yaml': announceList.replace('archive: private\n', 'archive: private\nfoo: 1\n') });
    expectOneError(await errorsOf(dir), dir.path('lists/a.yaml'), 4, /^unknown key 'foo'/, 1);
  });

  it('unknown key inside a member', async () => {
    const dir = configWith({ 'a.yaml': announceList.replace('    roles: [poster, recipient]\n', '    roles: [poster, recipient]\n    organization: X\n') });
    expectOneError(await errorsOf(dir), dir.path('lists/a.yaml'), 8, /^unknown key 'organization' in members\[0\] \(did you mean 'organisation'\?\)/, 5);
  });

  it('wrong types: a quoted port, yes for a boolean, a word for a kind', async () => {
    const dir = configWith(
      { 'a.yaml': announceList.replace('kind: announce', 'kind: anounce').replace('archive: private\n', 'archive: private\nmoderated: yes\n') },
      minimalServerYaml.replace('  port: 8025', '  port: "8025"'),
    );
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('server.yaml'), 11, /^http\.port must be a number, not a string \("8025"\) \(write the number without quotes\)$/, 9);
    expectOneError(errors, dir.path('lists/a.yaml'), 2, /^kind must be one of announce, discussion, public, not a string \("anounce"\)$/, 7);
    expectOneError(errors, dir.path('lists/a.yaml'), 4, /^moderated must be true or false, not a string \("yes"\)/, 12);
  });

  it('the archive page settings: info text and its format, showPrivateLists and trustProxy are checked like every field', async () => {
    const publicList = 'description: applications\nkind: public\narchive: public\ninfo: |\n  **Apply** here.\n';
    const good = await configOf(configWith({ 'apply.yaml': publicList }));
    expect(good.lists.get('apply')).toMatchObject({ info: '**Apply** here.\n', infoFormat: 'markdown' });
    expect(good.server.http).toMatchObject({ showPrivateLists: true, trustProxy: false });
    const dir = configWith(
      { 'apply.yaml': `${publicList}infoFormat: html\n`, 'other.yaml': 'kind: public\narchive: public\ninfo: [not, text]\n' },
      minimalServerYaml.replace('  port: 8025\n', '  port: 8025\n  showPrivateLists: no\n'),
    );
    const errors = await errorsOf(dir);
    expect(errors.find((error) => error.file === dir.path('lists/apply.yaml'))?.reason).toMatch(/^infoFormat must be one of markdown, text/);
    expect(errors.find((error) => error.file === dir.path('lists/other.yaml'))?.reason).toMatch(/^info must be/);
    expect(errors.find((error) => error.file === dir.path('server.yaml'))?.reason).toMatch(/^http\.showPrivateLists must be true or false/);
  });

  it('out-of-range number and an empty admins list', async () => {
    const dir = configWith({ 'a.yaml': announceList }, minimalServerYaml.replace('  port: 2526', '  port: 70000').replace('  - postmaster@lists.example.org\n', '').replace('admins:', 'admins: []'));
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('server.yaml'), 8, /^relay\.port must be at most 65535, not a number \(70000\)$/);
    expectOneError(errors, dir.path('server.yaml'), 12, /^admins must have at least 1 entry$/);
  });

  it('a cron schedule node-cron would refuse (31 February, a bad field) is refused with its line', async () => {
    const dir = configWith({ 'a.yaml': announceList }, `${minimalServerYaml}schedules:\n  cleanup: '0 0 31 2 *'\n  heldDigest: 'every day'\n`);
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('server.yaml'), 15, /^schedules\.cleanup: must be a cron expression/);
    expectOneError(errors, dir.path('server.yaml'), 16, /^schedules\.heldDigest: must be a cron expression/);
  });

  it('missing required keys point at the mapping they belong in', async () => {
    const dir = configWith({ 'a.yaml': 'description: no kind\narchive: none\n' }, minimalServerYaml.replace('domain: lists.example.org\n', ''));
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('server.yaml'), 1, /^missing required key 'domain'$/);
    expectOneError(errors, dir.path('lists/a.yaml'), 1, /^missing required key 'kind'$/);
  });

  it('a bad email address', async () => {
    const dir = configWith({ 'a.yaml': announceList.replace('security@vendor-a.example', 'security at vendor-a') });
    expectOneError(await errorsOf(dir), dir.path('lists/a.yaml'), 8, /^members\[1\]\.email must be an email address like name@example\.org, not a string \("security at vendor-a"\)$/, 12);
  });

  it('a missing key file', async () => {
    const dir = configWith({ 'a.yaml': announceList.replace('../keys/vendor-a.asc', '../keys/vendor-c.asc') });
    expectOneError(await errorsOf(dir), dir.path('lists/a.yaml'), 9, /^key file \.\.\/keys\/vendor-c\.asc not found \(resolved to .*\/config\/keys\/vendor-c\.asc\)$/, 10);
  });

  it('a key file that is not an armored public key, or is a secret key', async () => {
    const dir = configWith({ 'a.yaml': announceList.replace('../keys/vendor-a.asc', '../keys/notes.txt') });
    dir.write('keys/notes.txt', 'just some text\n');
    dir.write('keys/leaked.asc', readFileSync(path.join(shippedConfig, '..', 'examples', 'demo-keys', 'vendor-b.secret.asc'), 'utf8'));
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('lists/a.yaml'), 9, /not an ASCII-armored OpenPGP public key/);
    expectOneError(errors, dir.path('keys/leaked.asc'), 1, /holds a SECRET key/);
  });

  it('a YAML syntax error gives the line', async () => {
    const dir = configWith({ 'a.yaml': announceList.replace('    roles: [poster, recipient]', '    roles: [poster, recipient') });
    const errors = await errorsOf(dir);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((error) => error.file === dir.path('lists/a.yaml') && error.reason.startsWith('YAML: '))).toBe(true);
    expect(errors[0]!.line).toBeGreaterThanOrEqual(7);
    expect(errors[0]!.line).toBeLessThanOrEqual(8);
  });

  it('a tab-indented YAML file gives the line of the tab', async () => {
    const dir = configWith({ 'a.yaml': announceList }, minimalServerYaml.replace('  host: 127.0.0.1\n  port: 2526', '\thost: 127.0.0.1\n  port: 2526'));
    const errors = await errorsOf(dir);
    expect(errors[0]).toMatchObject({ file: dir.path('server.yaml'), line: 7 });
    expect(errors[0]!.reason).toMatch(/^YAML: /);
  });

  it('an empty file, a list instead of a mapping, two documents in one file, an alias bomb', async () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]', ''].join('\n');
    const dir = configWith({ 'a.yaml': '# nothing yet\n', 'b.yaml': '- kind: public\n', 'c.yaml': 'kind: public\narchive: none\n---\nkind: public\n', 'd.yaml': bomb });
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('lists/a.yaml'), 1, /^the file must be a mapping of keys to values, but it holds nothing$/);
    expectOneError(errors, dir.path('lists/b.yaml'), 1, /^the file must be a mapping of keys to values, but it holds a list$/);
    expectOneError(errors, dir.path('lists/c.yaml'), 3, /^YAML: .*multiple documents/i);
    expectOneError(errors, dir.path('lists/d.yaml'), 1, /^YAML: .*alias/i);
  });

  it('a key written twice in one mapping', async () => {
    const dir = configWith({ 'a.yaml': announceList.replace('archive: private\n', 'archive: private\nkind: public\n') });
    expectOneError(await errorsOf(dir), dir.path('lists/a.yaml'), 4, /^YAML: duplicate key/);
  });

  it('a duplicate member (addresses compared without case)', async () => {
    const dir = configWith({ 'a.yaml': `${announceList}  - email: Security@Vendor-A.example\n    key: ../keys/vendor-a.asc\n` });
    expectOneError(await errorsOf(dir), dir.path('lists/a.yaml'), 10, /^duplicate member security@vendor-a\.example \(already listed at line 8\)$/, 12);
  });

  it('a malformed fingerprint, and both key and fingerprint', async () => {
    const dir = configWith({
      'a.yaml': `${announceList}  - email: security@vendor-b.example\n    fingerprint: 3A1163EB5D68156131B170E6E8F188BA1E9A8F0\n  - email: c@vendor-c.example\n    key: ../keys/vendor-b.asc\n    fingerprint: 3A1163EB5D68156131B170E6E8F188BA1E9A8F08\n`,
    });
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('lists/a.yaml'), 11, /^members\[2\]\.fingerprint must be a 40-hex-digit OpenPGP v4 fingerprint/, 18);
    expectOneError(errors, dir.path('lists/a.yaml'), 12, /^members\[3\]: give either key or fingerprint, not both$/);
  });

  it('a fingerprint with no key in keys/', async () => {
    const dir = configWith({
      'a.yaml': `${announceList}  - email: security@vendor-b.example\n    fingerprint: '0000000000000000000000000000000000000000'\n`,
      // Unquoted, YAML reads an all-digit fingerprint as a number: the reason says to quote it.
      'b.yaml': `${announceList}  - email: security@vendor-b.example\n    fingerprint: 1234567890123456789012345678901234567890\n`,
    });
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('lists/a.yaml'), 11, /^no key with fingerprint 0{40} in .*\/config\/keys\/\*\.asc/, 18);
    expectOneError(errors, dir.path('lists/b.yaml'), 11, /^members\[2\]\.fingerprint must be a string, not a number .*\(put the value in quotes: '\.\.\.'\)$/, 18);
  });

  it('a fingerprint finds its key among keys/*.asc (any case); key: files get their fingerprint filled in', async () => {
    const dir = configWith({ 'a.yaml': `${announceList}  - email: security@vendor-b.example\n    fingerprint: 3a1163eb5d68156131b170e6e8f188ba1e9a8f08\n` });
    const members = (await configOf(dir)).lists.get('a')!.members;
    expect(members[2]).toMatchObject({
      address: 'security@vendor-b.example',
      fingerprint: '3A1163EB5D68156131B170E6E8F188BA1E9A8F08',
      keySource: dir.path('keys/vendor-b.asc'),
      armoredKey: readFileSync(path.join(fixtureConfig, 'keys', 'vendor-b.asc'), 'utf8'),
    });
    expect(members[0]!.fingerprint).toBe('A07C4A68B2460BC1ED747884839D7163069C6094');
    expect(members[1]!.fingerprint).toBe('560D94A6C9890C932B41595144C707ABA828ACD7');
  });

  it('broken armor in a key file or in keys/, and a key file holding two keys', async () => {
    const broken = readFileSync(path.join(fixtureConfig, 'keys', 'vendor-a.asc'), 'utf8').replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!garbage!!!!');
    const two = readFileSync(path.join(fixtureConfig, 'keys', 'vendor-a.asc'), 'utf8') + readFileSync(path.join(fixtureConfig, 'keys', 'vendor-b.asc'), 'utf8');
    const keyring = exportWithGpg(['vendor-a', 'vendor-b']);
    expect(keyring.split('BEGIN PGP PUBLIC KEY BLOCK').length - 1).toBe(1);
    const dir = configWith({
      'a.yaml': `${announceList}  - email: two@vendor-c.example\n    key: ../keys/extra/two.asc\n  - email: ring@vendor-c.example\n    key: ../keys/extra/ring.asc\n`.replace('../keys/vendor-a.asc', '../keys/extra/broken.asc'),
    });
    dir.write('keys/extra/broken.asc', broken);
    dir.write('keys/extra/two.asc', two);
    dir.write('keys/extra/ring.asc', keyring);
    dir.write('keys/junk.asc', broken);
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('lists/a.yaml'), 9, /^key file \.\.\/keys\/extra\/broken\.asc is not a readable OpenPGP public key$/);
    expectOneError(errors, dir.path('lists/a.yaml'), 11, /^key file \.\.\/keys\/extra\/two\.asc holds 2 key blocks/);
    expectOneError(errors, dir.path('lists/a.yaml'), 13, /^key file \.\.\/keys\/extra\/ring\.asc holds 2 keys/);
    expectOneError(errors, dir.path('keys/junk.asc'), 1, /^not a readable OpenPGP public key/);
    expect(errors).toHaveLength(4);
  });

  it('list names must be lower-case local parts; .yml files are not silently ignored', async () => {
    const dir = configWith({ 'Upper.yaml': announceList, 'a+b.yaml': announceList, 'other.yml': announceList, '.a.yaml.swp': 'junk', 'b.yaml~': 'junk' });
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('lists/Upper.yaml'), 1, /not a valid list name/);
    expectOneError(errors, dir.path('lists/a+b.yaml'), 1, /not a valid list name.*no '\+'/);
    expectOneError(errors, dir.path('lists/other.yml'), 1, /rename other\.yml to other\.yaml/);
    expect(errors).toHaveLength(3);
  });

  it('a missing config directory names server.yaml and lists/', async () => {
    current = makeConfigDir({ empty: true });
    const errors = await errorsOf({ ...current, dir: path.join(current.root, 'nowhere') });
    expect(errors.map((error) => error.reason)).toEqual([
      expect.stringMatching(/^the lists\/ directory is missing/),
      expect.stringMatching(/^file not found \(is the config directory right/),
    ]);
  });

  it('paths are relative to the file that names them; missing TLS files are errors', async () => {
    const server = minimalServerYaml.replace('dataDir: ../data', 'dataDir: ../state/data').replace('  port: 2525\n', '  port: 2525\n  tls:\n    key: tls/key.pem\n    cert: tls/cert.pem\n');
    const dir = configWith({ 'a.yaml': announceList }, server);
    expectOneError(await errorsOf(dir), dir.path('server.yaml'), 8, /^file tls\/cert\.pem not found/, 11);
    dir.write('tls/cert.pem', 'cert');
    dir.write('tls/key.pem', 'key');
    const config = await configOf(dir);
    expect(config.server.dataPath).toBe(path.join(dir.root, 'state', 'data'));
    expect(config.server.dataDir).toBe('../state/data');
    expect(config.server.smtp.tls).toEqual({ key: dir.path('tls/key.pem'), cert: dir.path('tls/cert.pem') });
  });

  it('member addresses are lower-cased for lookups; the written email stays', async () => {
    const dir = configWith({ 'a.yaml': announceList.replace('security@vendor-a.example', 'Security@Vendor-A.example') });
    const member = (await configOf(dir)).lists.get('a')!.members[1]!;
    expect(member).toMatchObject({ email: 'Security@Vendor-A.example', address: 'security@vendor-a.example', roles: ['recipient'] });
  });
});

describe('cross-field checks', () => {
  it('a list name that collides with another list\'s -request/-owner/-sendkey/-bounces address', async () => {
    const dir = configWith({ 'a.yaml': announceList, 'a-owner.yaml': 'kind: public\narchive: none\n', 'a-bounces.yaml': 'kind: public\narchive: none\n' });
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('lists/a-owner.yaml'), 1, /^list name 'a-owner' collides with the -owner address of list 'a'/);
    expectOneError(errors, dir.path('lists/a-bounces.yaml'), 1, /collides with the -bounces address of list 'a'/);
  });

  it('an announce list with no poster', async () => {
    const dir = configWith({ 'a.yaml': announceList.replace('roles: [poster, recipient]', 'roles: [recipient]') });
    expectOneError(await errorsOf(dir), dir.path('lists/a.yaml'), 4, /^announce list has no member with role 'poster'/, 1);
  });

  it('publishTo naming a list that does not exist, or one that is not public', async () => {
    const dir = configWith({
      'a.yaml': announceList.replace('archive: private\n', 'archive: private\npublishTo: nowhere\n'),
      'b.yaml': announceList.replace('archive: private\n', 'archive: private\npublishTo: c\n'),
      'c.yaml': 'kind: discussion\narchive: private\n',
      'd.yaml': 'kind: public\narchive: public\n',
    });
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('lists/a.yaml'), 4, /^publishTo names list 'nowhere', which does not exist \(no lists\/nowhere\.yaml\); public lists: d$/, 12);
    expectOneError(errors, dir.path('lists/b.yaml'), 4, /^publishTo names list 'c', which is not public/, 12);
    expect(errors).toHaveLength(2);
  });

  it('a public list as publishTo is fine', async () => {
    const dir = configWith({ 'a.yaml': announceList.replace('archive: private\n', 'archive: private\npublishTo: d\nmailOnRelease: true\n'), 'd.yaml': 'kind: public\narchive: public\n' });
    expect((await configOf(dir)).lists.get('a')).toMatchObject({ publishTo: 'd', mailOnRelease: true });
  });

  it('an embargoPattern that is not a valid regular expression, or has no group', async () => {
    const dir = configWith({
      'a.yaml': announceList.replace('archive: private\n', "archive: private\nembargoPattern: 'Embargo: ([0-9'\n"),
      'b.yaml': announceList.replace('archive: private\n', "archive: private\nembargoPattern: 'Embargo: \\S+'\n"),
    });
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('lists/a.yaml'), 4, /^embargoPattern is not a valid regular expression: /, 17);
    expectOneError(errors, dir.path('lists/b.yaml'), 4, /^embargoPattern needs a capturing group/);
  });

  it('announce-only keys on other kinds, mailOnRelease without publishTo, public archive of an encrypted list', async () => {
    const dir = configWith({
      'a.yaml': announceList.replace('archive: private\n', 'archive: public\nmailOnRelease: true\n'),
      'b.yaml': 'kind: discussion\narchive: private\npublishTo: a\n',
    });
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('lists/a.yaml'), 3, /^archive: public is only allowed on kind: public lists/);
    expectOneError(errors, dir.path('lists/a.yaml'), 4, /^mailOnRelease needs publishTo/);
    expectOneError(errors, dir.path('lists/b.yaml'), 3, /^publishTo only applies to kind: announce lists$/);
  });

  it('a list address as a member (mail loop), and a list size limit above the server\'s', async () => {
    const dir = configWith({
      'a.yaml': `${announceList}  - email: b-request@lists.example.org\nmaxMessageBytes: 999999999\n`,
      'b.yaml': 'kind: public\narchive: none\n',
    });
    const errors = await errorsOf(dir);
    expectOneError(errors, dir.path('lists/a.yaml'), 10, /^b-request@lists\.example\.org is an address of this server/);
    expectOneError(errors, dir.path('lists/a.yaml'), 11, /^maxMessageBytes 999999999 is larger than smtp\.maxMessageBytes 26214400/);
  });

  it('an admin address that is one of the lists\' own addresses', async () => {
    const dir = configWith({ 'a.yaml': announceList }, minimalServerYaml.replace('  - postmaster@lists.example.org\n', '  - postmaster@lists.example.org\n  - A-Owner@lists.example.org\n'));
    expectOneError(await errorsOf(dir), dir.path('server.yaml'), 14, /^A-Owner@lists\.example\.org is an address of this server; admin notices sent there would loop$/, 5);
  });
});

describe('all errors at once, formatted', () => {
  it('returns every error across files, sorted, one FILE:LINE:COLUMN: reason line each', async () => {
    const dir = configWith(
      {
        'a.yaml': announceList.replace('kind: announce', 'kind: 7').replace('../keys/vendor-a.asc', '../keys/missing.asc'),
        'b.yaml': 'kind: public\narchive: public\nmembers:\n  - email: x@example.org\n  - email: x@example.org\n',
      },
      minimalServerYaml.replace('domain: lists.example.org', 'domain: not a domain'),
    );
    const errors = await errorsOf(dir);
    expect(errors.map((error) => `${path.relative(dir.dir, error.file)}:${error.line}`)).toEqual(['lists/a.yaml:2', 'lists/b.yaml:5', 'server.yaml:1']);

    const cwd = process.cwd();
    try {
      process.chdir(dir.root);
      const text = formatConfigErrors(errors);
      const lines = text.split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[0]).toBe('config/lists/a.yaml:2:7: kind must be one of announce, discussion, public, not a number (7)');
      expect(lines[1]).toBe('config/lists/b.yaml:5:12: duplicate member x@example.org (already listed at line 4)');
      expect(lines[2]).toMatch(/^config\/server\.yaml:1:9: domain must be a domain name like lists\.example\.org, not a string \("not a domain"\)$/);
    } finally {
      process.chdir(cwd);
    }
  });

  it('prints absolute paths for files outside the working directory', () => {
    const text = formatConfigErrors([{ file: '/nonexistent-root/server.yaml', line: 3, column: 5, reason: 'x' }]);
    expect(text).toBe('/nonexistent-root/server.yaml:3:5: x');
  });
});
