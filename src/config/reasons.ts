// Turns zod validation issues into admin-readable ConfigErrors pointing at the YAML node they concern.
import { z } from 'zod';
import type { ConfigError } from './types.ts';
import type { SourceFile, ValuePath } from './source.ts';

type Issue = z.core.$ZodIssue;

export function issuesToErrors(source: SourceFile, schema: z.ZodType, issues: readonly Issue[]): ConfigError[] {
  const errors: ConfigError[] = [];
  for (const issue of issues) {
    const path = issue.path;
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, path);
      for (const key of issue.keys) {
        const suggestion = closest(key, known);
        const where = path.length > 0 ? ` in ${label(path)}` : '';
        const hint = suggestion ? ` (did you mean '${suggestion}'?)` : known.length > 0 ? ` (known keys: ${known.join(', ')})` : '';
        errors.push({ file: source.file, ...source.keyPosition(path, key), reason: `unknown key '${key}'${where}${hint}` });
      }
      continue;
    }
    errors.push({ file: source.file, ...source.positionOf(path), reason: reasonFor(source, issue) });
  }
  return errors;
}

function reasonFor(source: SourceFile, issue: Issue): string {
  const path = issue.path;
  const name = label(path);
  const got = source.describe(path);
  if (got === 'nothing' && path.length > 0 && (issue.code === 'invalid_type' || issue.code === 'invalid_value')) {
    const parent = path.slice(0, -1);
    return `missing required key '${String(path[path.length - 1])}'${parent.length > 0 ? ` in ${label(parent)}` : ''}`;
  }
  switch (issue.code) {
    case 'invalid_type': {
      if (path.length === 0) return `the file must be a mapping of keys to values, but it holds ${got}`;
      const hint = issue.expected === 'boolean' && got.startsWith('a string') ? ' (write true or false, without quotes)' : '';
      const numberHint = issue.expected === 'number' && got.startsWith('a string') ? ' (write the number without quotes)' : '';
      // YAML reads 0123…, 1e5… and true as numbers or booleans; an all-digit fingerprint is the classic case.
      const quoteHint = issue.expected === 'string' && (got.startsWith('a number') || got.startsWith('a boolean')) ? " (put the value in quotes: '...')" : '';
      return `${name} must be ${article(issue.expected)}, not ${got}${hint}${numberHint}${quoteHint}`;
    }
    case 'invalid_value':
      return `${name} must be one of ${issue.values.map((value) => String(value)).join(', ')}, not ${got}`;
    case 'invalid_format':
      if (issue.format === 'regex') return `${name} ${issue.message}, not ${got}`;
      return `${name} must be a valid ${issue.format}, not ${got}`;
    case 'too_small':
      if (issue.origin === 'array') return `${name} must have at least ${String(issue.minimum)} entr${issue.minimum === 1 ? 'y' : 'ies'}`;
      if (issue.origin === 'string') return `${name} must not be empty`;
      return `${name} must be ${issue.inclusive === false ? 'greater than' : 'at least'} ${String(issue.minimum)}, not ${got}`;
    case 'too_big':
      if (issue.origin === 'array') return `${name} must have at most ${String(issue.maximum)} entries`;
      return `${name} must be ${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}, not ${got}`;
    case 'not_multiple_of':
      return `${name} must be a multiple of ${String(issue.divisor)}`;
    default:
      return path.length > 0 ? `${name}: ${issue.message}` : issue.message;
  }
}

/** `smtp.port`, `members[2].email`: how the value is named in messages. */
export function label(path: ValuePath): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text.length > 0 ? `.${String(segment)}` : String(segment);
  }
  return text.length > 0 ? text : 'the file';
}

function article(expected: string): string {
  const words: Record<string, string> = {
    object: 'a mapping (key: value lines)',
    array: 'a list',
    string: 'a string',
    number: 'a number',
    int: 'a whole number',
    boolean: 'true or false',
  };
  return words[expected] ?? `a ${expected}`;
}

/** The keys the schema allows at `path`, to suggest a fix for a misspelt key. */
function knownKeysAt(schema: z.ZodType, path: ValuePath): string[] {
  let current: z.ZodType | undefined = unwrap(schema);
  for (const segment of path) {
    if (!current) return [];
    if (current instanceof z.ZodObject && typeof segment === 'string') current = unwrap(current.shape[segment] as z.ZodType | undefined);
    else if (current instanceof z.ZodArray && typeof segment === 'number') current = unwrap(current.element as z.ZodType);
    else return [];
  }
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let current = schema;
  while (current instanceof z.ZodDefault || current instanceof z.ZodOptional || current instanceof z.ZodNullable) {
    current = current.unwrap() as z.ZodType;
  }
  return current;
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  // Only suggest when it is plausibly a typo, not a different word.
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/** Edit distance counting a swap of two neighbouring letters as one edit (the commonest typo: 'prot' for 'port'). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, index) => index)];
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      let best = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      row[j] = best;
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}
