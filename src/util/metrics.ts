// Process-wide counters, gauges and histograms, rendered in Prometheus text format; labels never carry personal data.

type Labels = Record<string, string>;

interface Series {
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Map<string, number>;
  buckets?: number[];
}

const registry = new Map<string, Series>();
const defaultBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const gaugeCallbacks = new Map<string, () => Array<{ labels: Labels; value: number }>>();

function labelKey(labels: Labels = {}): string {
  const keys = Object.keys(labels).sort();
  return keys.map((key) => `${key}="${String(labels[key]).replace(/["\\\n]/g, '_')}"`).join(',');
}

function series(name: string, type: Series['type'], help: string, buckets?: number[]): Series {
  let entry = registry.get(name);
  if (!entry) {
    entry = { help, type, values: new Map(), buckets };
    registry.set(name, entry);
  }
  return entry;
}

/** Where handles record: this thread's registry, unless the thread relays to another's (see recordMetricsWith). */
export interface MetricsRecorder {
  increment(name: string, labels: Labels, by: number, help: string): void;
  observe(name: string, value: number, help: string, buckets: number[] | undefined): void;
}

export const metrics = {
  /** Adds to a counter. Call sites use a counter() handle; this is the registry's entry point, and the relay's. */
  increment(name: string, labels: Labels, by: number, help: string): void {
    const entry = series(name, 'counter', help);
    const key = labelKey(labels);
    entry.values.set(key, (entry.values.get(key) ?? 0) + by);
  },
  /** Adds one observation to a histogram. Call sites use a histogram() handle; this is the registry's entry point, and the relay's. */
  observe(name: string, seconds: number, help: string, buckets = defaultBuckets): void {
    const entry = series(name, 'histogram', help, buckets);
    for (const bound of entry.buckets ?? []) {
      if (seconds <= bound) entry.values.set(`le="${bound}"`, (entry.values.get(`le="${bound}"`) ?? 0) + 1);
    }
    entry.values.set('le="+Inf"', (entry.values.get('le="+Inf"') ?? 0) + 1);
    entry.values.set('sum', (entry.values.get('sum') ?? 0) + seconds);
  },
  value(name: string, labels: Labels = {}): number {
    return registry.get(name)?.values.get(labelKey(labels)) ?? 0;
  },
  render(): string {
    const lines: string[] = [];
    for (const [name, entry] of registry) {
      lines.push(`# HELP ${name} ${entry.help}`, `# TYPE ${name} ${entry.type}`);
      if (entry.type === 'gauge') {
        for (const { labels, value } of gaugeCallbacks.get(name)?.() ?? []) {
          const key = labelKey(labels);
          lines.push(`${name}${key ? `{${key}}` : ''} ${value}`);
        }
      } else if (entry.type === 'histogram') {
        for (const bound of [...(entry.buckets ?? []).map(String), '+Inf']) {
          lines.push(`${name}_bucket{le="${bound}"} ${entry.values.get(`le="${bound}"`) ?? 0}`);
        }
        lines.push(`${name}_sum ${entry.values.get('sum') ?? 0}`, `${name}_count ${entry.values.get('le="+Inf"') ?? 0}`);
      } else {
        for (const [key, value] of entry.values) lines.push(`${name}${key ? `{${key}}` : ''} ${value}`);
      }
    }
    return lines.join('\n') + '\n';
  },
};

let recorder: MetricsRecorder = metrics;

/** A thread whose metrics belong to another thread's registry (SMTP intake) sends its handles' records there. */
export function recordMetricsWith(next: MetricsRecorder): void {
  recorder = next;
}

/**
 * Runs work whose counters and histograms are not recorded: the start-up rehearsal's synthetic post must not show on
 * /metrics as mail handled. Only for work that runs while nothing else in this thread records (before the daemon is
 * ready); records relayed from the intake thread go to the registry directly and still count.
 */
export async function uncounted<T>(work: () => Promise<T>): Promise<T> {
  const previous = recorder;
  recorder = { increment: () => undefined, observe: () => undefined };
  try {
    return await work();
  } finally {
    recorder = previous;
  }
}

/** Each metric is declared once, by name: a second declaration is a bug (two call sites that would drift apart). */
const declared = new Set<string>();

function declare(name: string): void {
  if (declared.has(name)) throw new Error(`metric ${name} is declared twice`);
  declared.add(name);
}

/** The labels a handle takes: none (then only an optional amount), or a value for each declared label name. */
type LabelArguments<L extends string, Rest extends unknown[]> = [L] extends [never] ? Rest : [labels: Record<L, string>, ...Rest];

export interface Counter<L extends string> {
  readonly name: string;
  inc(...args: LabelArguments<L, [by?: number]>): void;
}

export interface Histogram {
  readonly name: string;
  observe(seconds: number): void;
}

export interface Gauge<L extends string> {
  readonly name: string;
  /** The values are computed at scrape time (queue depth, oldest row age); the component that knows them says how. */
  readFrom(read: () => Array<{ labels: Record<L, string>; value: number }>): void;
}

/** Declares a counter: its name, help text and label names, in one place; call sites use the handle. */
export function counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
  declare(name);
  return {
    name,
    inc(...args: unknown[]) {
      const [labels, by] = (labelNames.length ? args : [{}, ...args]) as [Labels, number | undefined];
      recorder.increment(name, labels, by ?? 1, help);
    },
  };
}

/** Declares a histogram (seconds unless said otherwise) with its buckets. */
export function histogram(name: string, help: string, buckets?: number[]): Histogram {
  declare(name);
  return { name, observe: (value) => recorder.observe(name, value, help, buckets) };
}

/** Declares a gauge; it appears on /metrics once a component tells it where its values come from. */
export function gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
  declare(name);
  return {
    name,
    readFrom(read) {
      series(name, 'gauge', help);
      gaugeCallbacks.set(name, read);
    },
  };
}

/** The `list` label of a per-list series: a private list's name only when the admin asked for it (metrics.listLabels). */
export function listLabel(listLabels: boolean, list: { name: string; kind: string }): string {
  return list.kind === 'public' || listLabels ? list.name : 'private';
}
