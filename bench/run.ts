// Runs the benchmarks: every bench/NAME.ts exporting run(), or only the names given (`npm run bench -- intake`).
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchModule, BenchRow } from './types.ts';
import buildDist from '../test/helpers/build-dist.ts';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
// Not benchmarks: this runner, shared types, and the fuzzer (its own npm script).
const notBenchmarks = new Set(['run', 'types', 'fuzz']);

function available(): string[] {
  return readdirSync(benchDir)
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => basename(file, '.ts'))
    .filter((name) => !notBenchmarks.has(name))
    .sort();
}

function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** The figure as a multiple of its target ('≤ 100' and a value of 42 give 0.42x), when the target is one number. */
export function targetRatio(row: BenchRow): string {
  const bound = /^\s*[≤≥<>=]+\s*([\d.,]+)\s*$/.exec(row.target ?? '')?.[1];
  if (bound === undefined) return '';
  const target = Number(bound.replace(/,/g, ''));
  if (!Number.isFinite(target) || target === 0 || !Number.isFinite(row.value)) return '';
  return `${(row.value / target).toFixed(2)}x`;
}

export function formatTable(rows: Array<BenchRow & { bench: string }>): string {
  const header = ['bench', 'scenario', 'metric', 'value', 'unit', 'target', 'of target', 'ok'];
  const cells = rows.map((row) => [
    row.bench,
    row.scenario,
    row.metric,
    formatValue(row.value),
    row.unit,
    row.target ?? '',
    targetRatio(row),
    row.ok === undefined ? '' : row.ok ? 'OK' : 'MISS',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((cell) => cell[column].length)));
  const numeric = new Set([3, 6]);
  const line = (cell: string[]) =>
    cell.map((text, column) => (numeric.has(column) ? text.padStart(widths[column]) : text.padEnd(widths[column]))).join('  ').trimEnd();
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...cells.map(line)].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const strict = argv.includes('--strict');
  const requested = argv.filter((argument) => !argument.startsWith('--'));
  const names = available();
  const unknown = requested.filter((name) => !names.includes(name));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark: ${unknown.join(', ')} (available: ${names.join(', ')})\n`);
    return 2;
  }
  // Benchmarks that spawn bin/embargo.js run the compiled dist/: build it if src/ changed.
  buildDist();
  const rows: Array<BenchRow & { bench: string }> = [];
  for (const name of requested.length > 0 ? requested : names) {
    const module = (await import(pathToFileURL(join(benchDir, `${name}.ts`)).href)) as Partial<BenchModule>;
    if (typeof module.run !== 'function') continue;
    process.stderr.write(`running ${name}...\n`);
    const started = performance.now();
    for (const row of await module.run()) rows.push({ bench: name, ...row });
    process.stderr.write(`  ${name} took ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }
  process.stdout.write(formatTable(rows) + '\n');
  const missed = rows.filter((row) => row.ok === false);
  const checked = rows.filter((row) => row.ok !== undefined).length;
  process.stdout.write(`\n${checked - missed.length} of ${checked} targets met${missed.length > 0 ? `; MISS: ${missed.map((row) => `${row.bench} ${row.metric}`).join(', ')}` : ''}\n`);
  return strict && missed.length > 0 ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
}
