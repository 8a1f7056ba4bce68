// Each metric is declared once (name, help, type, labels) and call sites use its handle: the sources and the registry agree.
import { expect, it } from 'vitest';
import { counter, gauge, histogram, metrics } from '../../src/util/metrics.ts';
import { metricDeclarations } from '../helpers/metrics.ts';

it('finds each metric name of src/ in exactly one declaration, and nowhere else', () => {
  const { names, mentions } = metricDeclarations();
  // The daemon's series: SMTP, pipeline, delivery, web, jobs, archive, advisories.
  expect(names.length).toBeGreaterThan(25);
  expect(names.filter((name, index) => names.indexOf(name) !== index)).toEqual([]);
  expect([...mentions].filter(([, count]) => count !== 1)).toEqual([]);
});

it('refuses a second declaration of a name', () => {
  counter('embargo_test_declared_once_total', 'A counter declared by this test');
  expect(() => counter('embargo_test_declared_once_total', 'The same name again')).toThrow(/declared twice/);
  expect(() => histogram('embargo_test_declared_once_total', 'As a histogram')).toThrow(/declared twice/);
});

it('renders one HELP and one TYPE line per metric, with the values its handles recorded', () => {
  const refused = counter('embargo_test_refused_total', 'Refusals by reason', ['reason']);
  const plain = counter('embargo_test_plain_total', 'A counter without labels');
  const seconds = histogram('embargo_test_seconds', 'Time per test step', [1, 10]);
  const depth = gauge('embargo_test_depth', 'Rows by state', ['state']);
  refused.inc({ reason: 'too-big' });
  refused.inc({ reason: 'too-big' }, 2);
  refused.inc({ reason: 'rate' });
  plain.inc();
  plain.inc(4);
  seconds.observe(0.5);
  seconds.observe(5);
  depth.readFrom(() => [{ labels: { state: 'queued' }, value: 7 }]);

  expect(metrics.value('embargo_test_refused_total', { reason: 'too-big' })).toBe(3);
  expect(metrics.value('embargo_test_plain_total')).toBe(5);
  const text = metrics.render();
  for (const name of ['embargo_test_refused_total', 'embargo_test_plain_total', 'embargo_test_seconds', 'embargo_test_depth']) {
    expect(text.split('\n').filter((line) => line.startsWith(`# HELP ${name} `))).toHaveLength(1);
    expect(text.split('\n').filter((line) => line.startsWith(`# TYPE ${name} `))).toHaveLength(1);
  }
  expect(text).toContain('# HELP embargo_test_refused_total Refusals by reason\n# TYPE embargo_test_refused_total counter\n');
  expect(text).toContain('embargo_test_refused_total{reason="rate"} 1\n');
  expect(text).toContain('embargo_test_seconds_bucket{le="1"} 1\nembargo_test_seconds_bucket{le="10"} 2\n');
  expect(text).toContain('embargo_test_seconds_sum 5.5\n');
  expect(text).toContain('# TYPE embargo_test_depth gauge\nembargo_test_depth{state="queued"} 7\n');
});
