// The layer check (`npm run lint:layers`, run by .ci/run): each area of src/ imports only the areas the table below allows it,
// and only a table's owner module writes SQL on that table.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

/**
 * The areas of src/ (a folder, or a file at the top; a file belongs to the longest one its path starts with) and the
 * other areas each may import. Layers go one way: transport (smtp/) and the domain (lists/, archive/) both stand on
 * the queues and the store; store/ and util/ import no module at all.
 */
export const layers: Record<string, readonly string[]> = {
  // SQLite: opens the file and runs the migrations it is handed.
  'store/': [],
  'util/': [],
  // The one byte-exact MIME reader and transfer decoding: a toolkit every area may use, standing only on util/.
  'mime/': ['util/'],
  // OpenPGP: the only area that imports openpgp.
  'crypto/': ['mime/', 'util/'],
  'config/': ['crypto/', 'mime/', 'util/'],
  // The queues: the spool, the outbound queue and bounce scores, each the owner of its tables; SMTP and the domain both stand on them.
  'queues/': ['store/', 'util/'],
  // Transport (SMTP intake, delivery client): never the domain.
  'smtp/': ['config/', 'mime/', 'queues/', 'store/', 'util/'],
  // The intake runner: SMTP intake in its own thread, wired there to the spool and to the list engine's address rules.
  'intake/': ['config/', 'lists/', 'mime/', 'queues/', 'smtp/', 'store/', 'util/'],
  // The domain: the archive under the list engine; neither imports smtp/.
  'archive/': ['component.ts', 'config/', 'crypto/', 'mime/', 'store/', 'util/'],
  'lists/': ['advisories/', 'archive/', 'component.ts', 'config/', 'crypto/', 'mime/', 'queues/', 'store/', 'util/'],
  // Advisories of announce lists: revisions, releases, the audit trail. They write list mail with the list engine's
  // notice builder, and queue their own copies (catch-up, publication) on the outbound queue.
  'advisories/': ['archive/', 'component.ts', 'config/', 'crypto/', 'lists/', 'mime/', 'queues/', 'store/', 'util/'],
  // The public web reads the archive, nothing of the list engine or of SMTP.
  'web/': ['advisories/', 'archive/', 'component.ts', 'config/', 'crypto/', 'mime/', 'store/', 'util/'],
  // Scheduled jobs: a runner over the domain and the queues.
  'ops/': ['component.ts', 'config/', 'crypto/', 'lists/', 'mime/', 'queues/', 'store/', 'util/'],
  // Wiring: what a daemon part is and is handed, where state lives, the migrations in order, the daemon itself.
  'component.ts': ['config/', 'crypto/', 'queues/', 'store/', 'util/'],
  'data-dir.ts': ['config/', 'crypto/'],
  'schema.ts': ['advisories/', 'archive/', 'lists/', 'ops/', 'queues/', 'store/'],
  'rehearsal.ts': ['component.ts', 'config/', 'crypto/', 'lists/', 'queues/', 'schema.ts', 'smtp/', 'store/', 'util/'],
  'daemon.ts': ['advisories/', 'archive/', 'component.ts', 'config/', 'crypto/', 'data-dir.ts', 'intake/', 'lists/', 'mime/', 'ops/', 'queues/', 'rehearsal.ts', 'schema.ts', 'smtp/', 'store/', 'util/', 'web/'],
  // The command line uses the modules directly; only `serve` loads the daemon, so other commands start fast.
  'cli/': ['advisories/', 'archive/', 'config/', 'crypto/', 'data-dir.ts', 'lists/', 'mime/', 'ops/', 'queues/', 'schema.ts', 'smtp/', 'store/', 'util/'],
  'cli/commands/serve.ts': ['config/', 'daemon.ts', 'util/'],
};

/**
 * Imports the table forbids that are still there, each with the reason. Every entry must still occur: when one is
 * removed from the code, remove it here, so the list only shrinks.
 */
export const knownExceptions: readonly string[] = [];

/** npm packages only one area may import. */
export const packageOwners: Record<string, string> = {
  openpgp: 'crypto/',
  'better-sqlite3': 'store/',
};

/**
 * Each table and the module that holds every SQL statement on it (a folder: any file in it); the table's schema may
 * also sit in a `*-schema.ts` or `schema.ts` of the owner's area (src/lists/lists-schema.ts, ...). Others call the owner's operations.
 */
export const tableOwners: Record<string, string> = {
  spool: 'queues/spool.ts',
  spool_rows: 'queues/spool.ts',
  spool_raw: 'queues/spool.ts',
  outbound: 'queues/outbound.ts',
  outbound_payload: 'queues/outbound.ts',
  member_bounces: 'queues/bounce-scores.ts',
  counted_bounces: 'queues/bounce-scores.ts',
  moderation: 'lists/moderation.ts',
  subscribers: 'lists/subscribers.ts',
  subscription_tokens: 'lists/subscribers.ts',
  post_counts: 'lists/stages/limit-rate.ts',
  notice_counts: 'lists/reply-budget.ts',
  seen_posts: 'lists/replay-marks.ts',
  accepted_signatures: 'lists/replay-marks.ts',
  archive_entries: 'archive/',
  archive_references: 'archive/',
  key_reminders: 'ops/key-expiry.ts',
  advisories: 'advisories/store.ts',
  advisory_revisions: 'advisories/store.ts',
  advisory_events: 'advisories/store.ts',
  advisory_deliveries: 'advisories/store.ts',
  advisory_commands: 'advisories/store.ts',
  schema_migrations: 'store/',
};

function ownsTable(path: string, owner: string): boolean {
  const area = `${owner.split('/')[0]}/`;
  return path === owner || (owner.endsWith('/') && path.startsWith(owner)) || (path.startsWith(area) && /(\/|-)schema\.ts$/.test(path));
}

/** Where SQL names a table: after the keywords that read or write one (upper case, as all SQL in src/ is written). */
const tableReference = (table: string) => new RegExp(`\\b(?:FROM|INTO|UPDATE|JOIN|TABLE|VIEW|EXISTS)\\s+${table}\\b`);

export interface LayerReport {
  /** One line per forbidden import (`FROM -> TO: why`) or SQL on another module's table (`FILE: SQL on TABLE, ...`). */
  violations: string[];
  /** knownExceptions entries that no longer occur. */
  staleExceptions: string[];
}

function areaOf(path: string): string | null {
  let best: string | null = null;
  for (const area of Object.keys(layers)) {
    if ((path === area || (area.endsWith('/') && path.startsWith(area))) && (!best || area.length > best.length)) best = area;
  }
  return best;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/**
 * Checks every .ts file under `srcDir` (import declarations, re-exports and import() calls, type-only ones too);
 * `exceptions` are forbidden imports let through for now (the layer test passes its own).
 */
export function checkLayers(srcDir: string, exceptions: readonly string[] = knownExceptions): LayerReport {
  const violations: string[] = [];
  const seenExceptions = new Set<string>();
  const toSrc = (path: string) => relative(srcDir, path).split(sep).join('/');
  for (const file of sourceFiles(srcDir).sort()) {
    const from = toSrc(file);
    const fromArea = areaOf(from);
    // The TypeScript compiler's own scanner finds the imports: no hand-written parser.
    const text = readFileSync(file, 'utf8');
    for (const [table, owner] of Object.entries(tableOwners)) {
      if (!ownsTable(from, owner) && tableReference(table).test(text)) violations.push(`${from}: SQL on table ${table}, which ${owner} owns (call its operations)`);
    }
    const { importedFiles } = ts.preProcessFile(text, true, true);
    for (const { fileName: specifier } of importedFiles) {
      if (!specifier.startsWith('.')) {
        const packageName = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
        const owner = packageOwners[packageName];
        if (owner && fromArea !== owner) violations.push(`${from} -> ${specifier}: only ${owner} imports ${packageName}`);
        continue;
      }
      const to = toSrc(resolve(dirname(file), specifier));
      if (to.startsWith('..')) {
        violations.push(`${from} -> ${specifier}: src/ imports nothing outside src/`);
        continue;
      }
      const toArea = areaOf(to);
      if (fromArea === null || toArea === null) {
        violations.push(`${from} -> ${to}: ${fromArea === null ? from : to} belongs to no area of scripts/check-layers.ts; add it to the table`);
        continue;
      }
      // Inside one area (or between an area and a file given its own rules within it) anything goes.
      if (fromArea.startsWith(toArea) || toArea.startsWith(fromArea)) continue;
      if (layers[fromArea].includes(toArea)) continue;
      const pair = `${from} -> ${to}`;
      if (exceptions.includes(pair)) {
        seenExceptions.add(pair);
        continue;
      }
      const allowed = layers[fromArea].length ? layers[fromArea].join(', ') : 'no other module';
      violations.push(`${pair}: ${fromArea} may import ${allowed}`);
    }
  }
  return { violations, staleExceptions: exceptions.filter((pair) => !seenExceptions.has(pair)) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const srcDir = fileURLToPath(new URL('../src', import.meta.url));
  const { violations, staleExceptions } = checkLayers(srcDir);
  for (const line of violations) process.stderr.write(`forbidden: ${line}\n`);
  for (const pair of staleExceptions) process.stderr.write(`stale exception (the import is gone; delete it from knownExceptions): ${pair}\n`);
  if (violations.length || staleExceptions.length) {
    process.stderr.write('layer check failed: the rules are in scripts/check-layers.ts\n');
    process.exitCode = 1;
  } else {
    process.stdout.write(`layers ok: ${Object.keys(layers).length} areas, ${knownExceptions.length} known exceptions; ${Object.keys(tableOwners).length} tables, each written only by its owner\n`);
  }
}
