// Parses one YAML config file keeping source positions, so any value path can be reported as file:line:column.
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node, Pair } from 'yaml';
import type { ConfigError } from './types.ts';

export type ValuePath = ReadonlyArray<PropertyKey>;

export interface Position {
  line: number;
  column: number;
}

export class SourceFile {
  readonly file: string;
  readonly document: Document.Parsed;
  readonly value: unknown;
  private readonly lineCounter: LineCounter;

  private constructor(file: string, document: Document.Parsed, lineCounter: LineCounter, value: unknown) {
    this.file = file;
    this.document = document;
    this.lineCounter = lineCounter;
    this.value = value;
  }

  /** Parses `text`; YAML syntax errors (and warnings, such as unknown tags) come back as ConfigErrors. */
  static parse(file: string, text: string): { source: SourceFile; errors: ConfigError[] } {
    const lineCounter = new LineCounter();
    const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
    const problems = [...document.errors, ...document.warnings];
    let value: unknown;
    let conversionError: string | null = null;
    if (problems.length === 0) {
      try {
        // The alias limit guards against "billion laughs" documents; 100 is far above what a config needs.
        value = document.toJS({ maxAliasCount: 100 });
      } catch (failure) {
        conversionError = (failure as Error).message;
      }
    }
    const source = new SourceFile(file, document, lineCounter, value);
    const errors: ConfigError[] = problems.map((problem) => ({
      file,
      ...source.positionAt(problem.pos[0]),
      reason: `YAML: ${yamlReason(problem.message, problem.code)}`,
    }));
    if (conversionError !== null) errors.push({ file, line: 1, column: 1, reason: `YAML: ${conversionError}` });
    return { source, errors };
  }

  positionAt(offset: number): Position {
    const { line, col } = this.lineCounter.linePos(offset);
    return { line: Math.max(line, 1), column: Math.max(col, 1) };
  }

  /**
   * Position of the value at `path` (or of its key, with `at: 'key'`). When the path does not exist in the file
   * (a missing key), this is the position of the deepest node that does: the map the key should be in.
   */
  positionOf(path: ValuePath, at: 'value' | 'key' = 'value'): Position {
    let node: Node | null = this.resolve(this.document.contents as Node | null);
    let lastPair: Pair | null = null;
    for (const segment of path) {
      if (node && isMap(node) && typeof segment === 'string') {
        const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === segment);
        if (!pair) break;
        lastPair = pair;
        // `key:` with no value has a null value node; then the key itself is the best place to point at.
        node = this.resolve(pair.value as Node | null) ?? (pair.key as Node);
      } else if (node && isSeq(node) && typeof segment === 'number' && segment < node.items.length) {
        lastPair = null;
        node = this.resolve(node.items[segment] as Node | null);
      } else {
        break;
      }
    }
    if (at === 'key' && lastPair && isScalar(lastPair.key)) node = lastPair.key;
    return this.nodeStart(node);
  }

  /** Position of the key `name` inside the map at `path` (for "unknown key" errors). */
  keyPosition(path: ValuePath, name: string): Position {
    const map = this.nodeAt(path);
    if (map && isMap(map)) {
      const pair = map.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === name);
      if (pair && isScalar(pair.key)) return this.nodeStart(pair.key);
    }
    return this.positionOf(path);
  }

  /** A short description of the YAML value at `path` for messages: `a string ("yes")`, `a list`, `nothing`. */
  describe(path: ValuePath): string {
    const node = this.nodeAt(path);
    if (!node) return 'nothing';
    if (isMap(node)) return 'a mapping';
    if (isSeq(node)) return 'a list';
    if (isScalar(node)) {
      const value = node.value;
      if (value === null || value === undefined) return 'an empty value';
      if (typeof value === 'string') return `a string (${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)})`;
      if (typeof value === 'number') return `a number (${value})`;
      if (typeof value === 'boolean') return `a boolean (${value})`;
    }
    return 'a value of another kind';
  }

  error(path: ValuePath, reason: string, at: 'value' | 'key' = 'value'): ConfigError {
    return { file: this.file, ...this.positionOf(path, at), reason };
  }

  private nodeAt(path: ValuePath): Node | null {
    let node: Node | null = this.resolve(this.document.contents as Node | null);
    for (const segment of path) {
      if (node && isMap(node) && typeof segment === 'string') {
        const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === segment);
        if (!pair) return null;
        node = this.resolve(pair.value as Node | null);
      } else if (node && isSeq(node) && typeof segment === 'number') {
        node = this.resolve((node.items[segment] as Node | undefined) ?? null);
      } else {
        return null;
      }
    }
    return node;
  }

  private resolve(node: Node | null): Node | null {
    if (node && isAlias(node)) return (node.resolve(this.document) as Node | undefined) ?? null;
    return node;
  }

  private nodeStart(node: Node | null): Position {
    if (!node?.range) return { line: 1, column: 1 };
    return this.positionAt(node.range[0]);
  }
}

/** The yaml library's messages end with " at line N, column M: <excerpt>" in some cases; the position is reported separately. */
function yamlReason(message: string, code: string): string {
  const text = message.replace(/ at line \d+, column \d+[\s\S]*$/, '').trim();
  if (code === 'DUPLICATE_KEY') return 'duplicate key (each key may appear once in a mapping)';
  return text.length > 0 ? text : code;
}
