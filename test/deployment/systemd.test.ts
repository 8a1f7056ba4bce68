// contrib/systemd/embargo.service: `systemd-analyze verify` passes with no warning, and the unit keeps the hardening docs/deployment.md promises.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/daemon.ts';

const unitFile = join(repoRoot, 'contrib/systemd/embargo.service');

/** Exit code and output of `systemd-analyze verify FILE` (it warns on standard error, e.g. about unknown keys). */
function verify(file: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('systemd-analyze', ['verify', file], { cwd: tmpdir() }, (error, stdout, stderr) => {
      // A missing systemd-analyze (apt-get install systemd) shows as code -1 with the reason.
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, output: `${stdout}${stderr}${error && code === -1 ? error.message : ''}`.trim() });
    });
  });
}

describe('contrib/systemd/embargo.service', () => {
  it('passes systemd-analyze verify without a warning', async () => {
    expect(await verify(unitFile)).toEqual({ code: 0, output: '' });
  });

  it('the check is real: a misspelt directive is reported', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'embargo-unit-'));
    try {
      const broken = join(dir, 'embargo.service');
      writeFileSync(broken, readFileSync(unitFile, 'utf8').replace('ProtectSystem=strict', 'ProtectSystm=strict'));
      expect((await verify(broken)).output).toContain("Unknown key 'ProtectSystm'");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs as its own user, without core dumps, on a read-only system but the data directory, restarted on failure', () => {
    const unit = readFileSync(unitFile, 'utf8');
    const directives = new Map(unit.split('\n').filter((line) => /^\w+=/.test(line)).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
    expect(directives.get('User')).toBe('embargo');
    expect(directives.get('LimitCORE')).toBe('0');
    expect(directives.get('ProtectSystem')).toBe('strict');
    expect(directives.get('ReadWritePaths')).toBe('/var/lib/embargo');
    expect(directives.get('NoNewPrivileges')).toBe('yes');
    expect(directives.get('Restart')).toBe('on-failure');
    expect(directives.get('ExecReload')).toContain('-HUP');
    expect(directives.get('ExecStart')).toMatch(/bin\/embargo\.js serve$/);
  });
});
