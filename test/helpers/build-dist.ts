// Vitest global setup: compiles src/ into dist/ before the tests when a source is newer, so tests that spawn bin/embargo.js run what users run.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const buildInfo = join(repoRoot, 'dist', '.tsbuildinfo');

function newestSource(dir: string): number {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export function isDistCurrent(): boolean {
  if (!existsSync(buildInfo)) return false;
  const built = statSync(buildInfo).mtimeMs;
  return newestSource(join(repoRoot, 'src')) <= built && statSync(join(repoRoot, 'tsconfig.build.json')).mtimeMs <= built;
}

export default function setup(): void {
  if (isDistCurrent()) return;
  execFileSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: 'inherit' });
  // tsc leaves its build info alone when no output changed; mark the build as current so the next run skips it.
  const now = new Date();
  utimesSync(buildInfo, now, now);
}
