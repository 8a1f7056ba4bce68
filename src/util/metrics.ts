// Process-wide counters, gauges and histograms, rendered in Prometheus text format; labels never carry personal data.

type Labels = Record<string, string>;

interface Series {
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Map<string, number>;
  buckets?: number[];
}

const registry = new Map<string, Series>();
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

export const metrics = {
  /** Adds to a counter; declare help text on first use. */
  increment(name: string, labels: Labels = {}, by = 1, help = name): void {
    const entry = series(name, 'counter', help);
    const key = labelKey(labels);
    entry.values.set(key, (entry.values.get(key) ?? 0) + by);
  },
  /** A gauge computed at scrape time (queue depth, oldest row age). */
  gauge(name: string, help: string, read: () => Array<{ labels: Labels; value: number }>): void {
    series(name, 'gauge', help);
    gaugeCallbacks.set(name, read);
  },
  observe(name: string, seconds: number, help = name, buckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]): void {
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

/** The `list` label of a per-list series: a private list's name only when the admin asked for it (metrics.listLabels). */
export function listLabel(listLabels: boolean, list: { name: string; kind: string }): string {
  return list.kind === 'public' || listLabels ? list.name : 'private';
}
