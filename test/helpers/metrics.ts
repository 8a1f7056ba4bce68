// The metric declarations in src/, read from the sources: each counter(), histogram() or gauge() call with its name.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './daemon.ts';

function sourceTexts(dir: string): Array<{ file: string; text: string }> {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceTexts(path);
    return entry.name.endsWith('.ts') ? [{ file: path, text: readFileSync(path, 'utf8') }] : [];
  });
}

const declaration = /\b(?:counter|histogram|gauge)(?:<[^>]*>)?\(\s*'(embargo_[a-z0-9_]+)'/g;

/** Every declared metric name, once per declaration (a name twice in the list is declared twice), and how often src/ spells it out. */
export function metricDeclarations(): { names: string[]; mentions: Map<string, number> } {
  const texts = sourceTexts(join(repoRoot, 'src'));
  const names = texts.flatMap(({ text }) => [...text.matchAll(declaration)].map((match) => match[1]));
  const mentions = new Map<string, number>();
  for (const name of names) {
    mentions.set(name, texts.reduce((count, { text }) => count + text.split(`'${name}'`).length - 1, 0));
  }
  return { names, mentions };
}
