// Invariant 4 (threat: hostile input that crashes, wedges or bloats the daemon): a short run of npm run fuzz against a real child daemon.
import { expect, it } from 'vitest';
import { formatReport, runFuzz } from '../../bench/fuzz.ts';

it('answers 300 generated malformed messages with 250 + a final spool state (or a clear 5xx), keeps every raw message, never crashes', async () => {
  const report = await runFuzz({ count: 300, seed: 20261126, concurrency: 6, settleTimeoutMs: 60_000 });
  console.log(formatReport(report));
  expect(report.sent).toBe(300);
  expect(report.crashes).toBe(0);
  expect(report.unexpectedReplies).toEqual([]);
  expect(report.shunted).toEqual([]);
  expect(report.stuck).toEqual([]);
  expect(report.rawMismatches).toEqual([]);
  expect(report.rawChecked).toBe(report.replies['250']);
  expect(report.errorLogs).toEqual({});
  // Every generator ran, and the size limit was met both ways.
  expect(Object.keys(report.byKind)).toHaveLength(16);
  expect(report.replies['552']).toBeGreaterThan(0);
  // Bounded memory: idle the daemon is about 220 MiB; 3 MiB messages and 10,000-part parses add to that.
  expect(report.peakRssMiB).toBeLessThan(640);
}, 120_000);
