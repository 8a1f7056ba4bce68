// The row every benchmark module returns; bench/run.ts prints them as one table.

export interface BenchRow {
  scenario: string;
  metric: string;
  value: number;
  unit: string;
  /** The target in words, e.g. '≥ 500'. */
  target?: string;
  /** Whether the target was met (absent when there is no target). */
  ok?: boolean;
}

/** What a bench/NAME.ts module exports. */
export type BenchModule = { run(): Promise<BenchRow[]> };
