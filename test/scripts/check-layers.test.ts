// The layer check: the tree as it is passes; a forbidden import, a stray openpgp import, SQL on another module's table or a stale exception fails it.
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { checkLayers, knownExceptions } from '../../scripts/check-layers.ts';
import { repoRoot } from '../helpers/daemon.ts';

const srcDir = join(repoRoot, 'src');
let copy: string | null = null;
afterEach(() => {
  if (copy) rmSync(copy, { recursive: true, force: true });
  copy = null;
});

/** A copy of src/ to break on purpose. */
function copyOfSrc(): string {
  copy = mkdtempSync(join(tmpdir(), 'embargo-layers-'));
  cpSync(srcDir, join(copy, 'src'), { recursive: true });
  return join(copy, 'src');
}

it('passes on the tree as it is, with every known exception still in use', () => {
  expect(checkLayers(srcDir)).toEqual({ violations: [], staleExceptions: [] });
});

it('fails on a new forbidden import: the domain importing smtp/, store/ importing a module, the CLI loading the daemon', () => {
  const src = copyOfSrc();
  appendFileSync(join(src, 'archive/store.ts'), "\nimport '../smtp/delivery.ts';\n");
  appendFileSync(join(src, 'store/database.ts'), "\nexport { migrations } from '../schema.ts';\n");
  appendFileSync(join(src, 'cli/load.ts'), "\nimport type { Daemon } from '../daemon.ts';\n");
  appendFileSync(join(src, 'lists/pipeline.ts'), "\nconst lazy = () => import('../smtp/delivery.ts');\n");
  const { violations } = checkLayers(src);
  expect(violations, violations.join('\n')).toHaveLength(4);
  expect(violations.some((line) => line.startsWith('archive/store.ts -> smtp/delivery.ts: archive/ may import '))).toBe(true);
  expect(violations).toContain('store/database.ts -> schema.ts: store/ may import no other module');
  expect(violations.some((line) => line.startsWith('cli/load.ts -> daemon.ts: cli/ may import '))).toBe(true);
  expect(violations.some((line) => line.startsWith('lists/pipeline.ts -> smtp/delivery.ts: lists/ may import '))).toBe(true);
});

it('keeps openpgp in crypto/ and better-sqlite3 in store/, src/ to itself, and every file in an area of the table', () => {
  const src = copyOfSrc();
  appendFileSync(join(src, 'lists/headers.ts'), "\nimport * as openpgp from 'openpgp';\nvoid openpgp;\n");
  appendFileSync(join(src, 'archive/queries.ts'), "\nimport type { Database } from 'better-sqlite3';\n");
  writeFileSync(join(src, 'stray.ts'), "import '../package.json';\nimport './util/errors.ts';\n");
  expect(checkLayers(src).violations).toEqual([
    'archive/queries.ts -> better-sqlite3: only store/ imports better-sqlite3',
    'lists/headers.ts -> openpgp: only crypto/ imports openpgp',
    'stray.ts -> ../package.json: src/ imports nothing outside src/',
    'stray.ts -> util/errors.ts: stray.ts belongs to no area of scripts/check-layers.ts; add it to the table',
  ]);
});

it("fails on SQL written outside the table's owner, but not on a call of the owner's operation", () => {
  const src = copyOfSrc();
  appendFileSync(join(src, 'lists/worker.ts'), "\nexport const sneaky = `UPDATE outbound SET state = 'queued'`;\n");
  appendFileSync(join(src, 'ops/cleanup.ts'), "\nexport const peek = 'SELECT count(*) FROM spool_rows';\nexport { countSuspendedRows } from '../queues/outbound.ts';\n");
  expect(checkLayers(src).violations).toEqual([
    'lists/worker.ts: SQL on table outbound, which queues/outbound.ts owns (call its operations)',
    'ops/cleanup.ts: SQL on table spool_rows, which queues/spool.ts owns (call its operations)',
  ]);
});

it('lets a known exception through, and reports one whose import is gone, so the allow-list only shrinks', () => {
  const src = copyOfSrc();
  appendFileSync(join(src, 'archive/store.ts'), "\nimport '../smtp/delivery.ts';\n");
  const exceptions = [...knownExceptions, 'archive/store.ts -> smtp/delivery.ts', 'smtp/server.ts -> lists/addresses.ts'];
  expect(checkLayers(src, exceptions)).toEqual({ violations: [], staleExceptions: ['smtp/server.ts -> lists/addresses.ts'] });
});
