// Loads config/server.yaml, config/lists/*.yaml and the member keys into one validated Config, or every error as file:line:column.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { listSchema, serverSchema } from './schema.ts';
import type { ListSettings, ServerSettings } from './schema.ts';
import { SourceFile } from './source.ts';
import { issuesToErrors } from './reasons.ts';
import { loadKeyIndex, resolveMemberKeys } from './members.ts';
import { crossListErrors } from './checks.ts';
import { inheritMembers } from './inheritance.ts';
import type { Config, ConfigError, ListConfig, ServerConfig } from './types.ts';

export type LoadResult = { ok: true; config: Config } | { ok: false; errors: ConfigError[] };

/** A list name is a plain local part: lower case, no '+' (that separates VERP tokens), no leading/trailing/double dots. */
export const listNamePattern = /^[a-z0-9](?:[a-z0-9_-]|\.(?!\.))*[a-z0-9]$|^[a-z0-9]$/;

export interface ParsedList {
  name: string;
  source: SourceFile;
  settings: ListSettings;
}

export async function loadConfig(configDir: string): Promise<LoadResult> {
  const root = path.resolve(configDir);
  const errors: ConfigError[] = [];

  const { server, source: serverSource } = await loadServer(root, errors);
  // Names of list files that exist but were refused: naming them elsewhere is not a second error.
  const refusedLists = new Set<string>();
  const parsedLists = await loadListFiles(root, errors, refusedLists);
  const keyIndex = await loadKeyIndex(path.join(root, 'keys'), errors);

  const lists = new Map<string, ListConfig>();
  const domain = server?.domain ?? 'invalid.example';
  await Promise.all(
    parsedLists.map(async (parsed) => {
      const members = await resolveMemberKeys(parsed.source, parsed.settings.members, keyIndex, root, errors);
      lists.set(parsed.name, {
        ...parsed.settings,
        name: parsed.name,
        address: `${parsed.name}@${domain}`,
        file: parsed.source.file,
        members,
      });
    }),
  );
  errors.push(...crossListErrors(parsedLists, server, serverSource, refusedLists));
  inheritMembers(parsedLists, lists, errors, refusedLists);

  if (errors.length > 0 || !server) return { ok: false, errors: sortErrors(errors) };
  // Sorted so that iteration order (and thus logs and tests) does not depend on directory order.
  const sorted = new Map([...lists.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { ok: true, config: { server, lists: sorted } };
}

/** One line per error, `FILE:LINE:COLUMN: reason`, with FILE relative to the working directory when it is below it. */
export function formatConfigErrors(errors: ConfigError[]): string {
  return errors
    .map((error) => {
      const relative = path.relative(process.cwd(), error.file);
      const shown = relative.length > 0 && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : error.file;
      return `${shown}:${error.line}:${error.column}: ${error.reason}`;
    })
    .join('\n');
}

async function readSource(file: string, errors: ConfigError[], missingHint: string): Promise<SourceFile | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (failure) {
    const code = (failure as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? `file not found${missingHint}` : `cannot read the file (${code ?? (failure as Error).message})`;
    errors.push({ file, line: 1, column: 1, reason });
    return null;
  }
  const { source, errors: syntaxErrors } = SourceFile.parse(file, text);
  if (syntaxErrors.length > 0) {
    errors.push(...syntaxErrors);
    return null;
  }
  return source;
}

async function loadServer(root: string, errors: ConfigError[]): Promise<{ server: ServerConfig | null; source: SourceFile | null }> {
  const file = path.join(root, 'server.yaml');
  const source = await readSource(file, errors, ' (is the config directory right? it must hold server.yaml and lists/)');
  if (!source) return { server: null, source: null };
  const result = serverSchema.safeParse(source.value);
  if (!result.success) {
    errors.push(...issuesToErrors(source, serverSchema, result.error.issues));
    return { server: null, source };
  }
  const settings: ServerSettings = result.data;
  const base = path.dirname(file);
  const before = errors.length;
  if (settings.smtp.tls) {
    settings.smtp.tls = {
      key: await existingFile(source, ['smtp', 'tls', 'key'], base, settings.smtp.tls.key, errors),
      cert: await existingFile(source, ['smtp', 'tls', 'cert'], base, settings.smtp.tls.cert, errors),
    };
  }
  if (settings.relay.auth?.passFile) {
    settings.relay.auth.passFile = await existingFile(source, ['relay', 'auth', 'passFile'], base, settings.relay.auth.passFile, errors);
  }
  if (settings.keys.passphraseFile) {
    settings.keys.passphraseFile = await existingFile(source, ['keys', 'passphraseFile'], base, settings.keys.passphraseFile, errors);
  }
  if (errors.length > before) return { server: null, source };
  return { server: { ...settings, configDir: root, file, dataPath: path.resolve(base, settings.dataDir) }, source };
}

/** Resolves a path named in `source` relative to that file and checks it is a readable file. */
async function existingFile(source: SourceFile, at: Array<string>, base: string, named: string, errors: ConfigError[]): Promise<string> {
  const absolute = path.resolve(base, named);
  try {
    const info = await stat(absolute);
    if (!info.isFile()) errors.push(source.error(at, `${named} is not a file (resolved to ${absolute})`));
  } catch {
    errors.push(source.error(at, `file ${named} not found (resolved to ${absolute})`));
  }
  return absolute;
}

async function loadListFiles(root: string, errors: ConfigError[], refused: Set<string>): Promise<ParsedList[]> {
  const directory = path.join(root, 'lists');
  let entries: string[];
  try {
    entries = (await readdir(directory)).sort();
  } catch (failure) {
    const code = (failure as NodeJS.ErrnoException).code;
    errors.push({
      file: directory,
      line: 1,
      column: 1,
      reason: code === 'ENOENT' ? 'the lists/ directory is missing (one NAME.yaml file per list goes there)' : `cannot read the lists/ directory (${code ?? 'error'})`,
    });
    return [];
  }
  const parsed: ParsedList[] = [];
  for (const entry of entries) {
    // Editors' temporary and backup files (.foo.yaml.swp, foo.yaml~, #foo.yaml#) are not lists.
    if (entry.startsWith('.') || entry.startsWith('#')) continue;
    const file = path.join(directory, entry);
    if (entry.endsWith('.yml')) {
      errors.push({ file, line: 1, column: 1, reason: `list files must be named NAME.yaml; rename ${entry} to ${entry.slice(0, -4)}.yaml` });
      continue;
    }
    if (!entry.endsWith('.yaml')) continue;
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) continue;
    const name = entry.slice(0, -'.yaml'.length);
    if (!listNamePattern.test(name)) {
      errors.push({
        file,
        line: 1,
        column: 1,
        reason: `'${name}' is not a valid list name: the file name is the list's address local part, so use lower-case letters, digits, '-', '_' and single dots (no '+', which separates bounce tokens)`,
      });
      continue;
    }
    const source = await readSource(file, errors, '');
    if (!source) {
      refused.add(name);
      continue;
    }
    const result = listSchema.safeParse(source.value);
    if (!result.success) {
      errors.push(...issuesToErrors(source, listSchema, result.error.issues));
      refused.add(name);
      continue;
    }
    parsed.push({ name, source, settings: result.data });
  }
  return parsed;
}

function sortErrors(errors: ConfigError[]): ConfigError[] {
  return [...errors].sort((a, b) => (a.file !== b.file ? (a.file < b.file ? -1 : 1) : a.line - b.line || a.column - b.column));
}
