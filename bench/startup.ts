// Start-up benchmark: CLI commands, daemon ready and idle RSS, and the first post after a start against the second, each also as a multiple of `node -e 0`.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { makeTestConfig, repoRoot, startTestDaemon, type TestDaemon } from '../test/helpers/daemon.ts';
import { buildPost, median, postOnce, rssOf, startWorld } from './e2e.ts';
import type { BenchRow } from './types.ts';

const runs = Number(process.env.BENCH_STARTUP_RUNS ?? 7);
const postRounds = Number(process.env.BENCH_STARTUP_POST_ROUNDS ?? 5);
const embargoBin = join(repoRoot, 'bin/embargo.js');

/** Seconds from spawning `node ARGS` to its exit (it must exit 0). */
function timeProcess(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: 'ignore', env: { ...process.env, CI: '1' } });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve((performance.now() - started) / 1000) : reject(new Error(`node ${args.join(' ')} exited with ${code}`))));
  });
}

async function medianOf(args: string[]): Promise<number> {
  await timeProcess(args); // warm the page cache
  const times: number[] = [];
  for (let run = 0; run < runs; run++) times.push(await timeProcess(args));
  return median(times);
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const baseline = await medianOf(['-e', '0']);
  const relative = (seconds: number) => ` (${(seconds / baseline).toFixed(1)}x node -e 0)`;
  const cli = `CLI process, start to exit (median of ${runs}; node -e 0 = ${(baseline * 1000).toFixed(0)} ms)`;
  rows.push({ scenario: cli, metric: 'node -e 0', value: baseline, unit: 's' });
  const help = await medianOf([embargoBin, '--help']);
  rows.push({ scenario: cli, metric: `embargo --help${relative(help)}`, value: help, unit: 's', target: '≤ 0.3', ok: help <= 0.3 });
  const members = await medianOf([embargoBin, 'members', 'xen-security-issues', '--config', join(repoRoot, 'config')]);
  rows.push({ scenario: cli, metric: `embargo members (shipped config)${relative(members)}`, value: members, unit: 's', target: '≤ 1', ok: members <= 1 });

  // The daemon on the demo lists: spawn → "embargo ready", then its idle RSS (main thread and intake thread are one process).
  const config = makeTestConfig();
  try {
    const readyTimes: number[] = [];
    const idleRss: number[] = [];
    for (let run = 0; run <= Math.min(runs, 5); run++) {
      const started = performance.now();
      const daemon: TestDaemon = await startTestDaemon({ mode: 'child', config });
      const ready = (performance.now() - started) / 1000;
      // The first start generates the list keys; it is not counted.
      if (run > 0) readyTimes.push(ready);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      if (run > 0) idleRss.push(rssOf(daemon.child!.pid!).now);
      await daemon.stop({ keepFiles: true });
    }
    const scenario = `embargo serve on the demo lists (child process, median of ${readyTimes.length})`;
    const ready = median(readyTimes);
    rows.push({ scenario, metric: `spawn → "embargo ready"${relative(ready)}`, value: ready, unit: 's', target: '≤ 1.5', ok: ready <= 1.5 });
    const rss = median(idleRss);
    rows.push({ scenario, metric: 'idle RSS 2 s after ready (with the intake thread)', value: rss, unit: 'MiB', target: '≤ 150', ok: rss <= 150 });
  } finally {
    config.cleanup();
  }

  // First post after a start against the second, 100 members: a fresh daemon process each round, same config and keys.
  const world = await startWorld();
  const worldConfig = world.daemon.config;
  try {
    await world.daemon.stop({ keepFiles: true });
    const posts = await Promise.all(Array.from({ length: postRounds * 2 }, (_, index) => buildPost(world.gpg, world.posterFingerprint, world.listFingerprint, 100 * 1024, index)));
    const firsts: number[] = [];
    const seconds: number[] = [];
    for (let round = 0; round < postRounds; round++) {
      world.daemon = await startTestDaemon({ mode: 'child', config: worldConfig });
      firsts.push((await postOnce(world, posts[round * 2])).afterAccept);
      seconds.push((await postOnce(world, posts[round * 2 + 1])).afterAccept);
      await world.daemon.stop({ keepFiles: true });
    }
    const scenario = `signed+encrypted 100 KiB post → 100 members right after a start (median of ${postRounds} starts)`;
    const ratios = firsts.map((first, index) => first / seconds[index]);
    rows.push({ scenario, metric: 'first post: 250 → last copy at relay', value: median(firsts), unit: 's' });
    rows.push({ scenario, metric: 'second post: 250 → last copy at relay', value: median(seconds), unit: 's' });
    const ratio = median(ratios);
    rows.push({ scenario, metric: 'first post / second post', value: ratio, unit: 'x', target: '≤ 1.2', ok: ratio <= 1.2 });
  } finally {
    await world.relay.close();
    await world.gpg.cleanup();
    worldConfig.cleanup();
  }
  return rows;
}
