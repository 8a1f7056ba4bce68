// Threat: per-list post counts and pending embargoes on the public web port tell anyone when advisories are posted.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestDaemon, waitForSpoolState } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const privateList = 'xen-security-issues';
const privateAddress = `${privateList}@lists.example.org`;
let daemon: TestDaemon;

beforeAll(async () => {
  daemon = await startTestDaemon();
});

afterAll(async () => {
  await daemon?.stop();
});

/** A plain post to the encrypted list: refused by the pipeline, so it moves the per-list counters. */
async function refusedPost(subject: string): Promise<void> {
  const result = await sendMail({ port: daemon.smtpPort, from: 'someone@outside.example', to: [privateAddress], raw: makeMessage({ from: 'someone@outside.example', to: privateAddress, subject }) });
  expect(result.code).toBe(250);
  expect(await waitForSpoolState(daemon.config.dbFile, [result.spoolId!], 'rejected')).toEqual(['rejected']);
}

it('the public web listener answers 404 for /metrics; the metrics listener serves them, without naming a private list', async () => {
  await refusedPost('counted');
  expect(daemon.httpPort).not.toBeNull();
  expect(daemon.metricsPort).not.toBeNull();
  expect(daemon.metricsPort).not.toBe(daemon.httpPort);

  const publicReply = await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`);
  expect(publicReply.status).toBe(404);
  expect(await publicReply.text()).not.toContain('embargo_');

  const metrics = await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`);
  expect(metrics.status).toBe(200);
  const text = await metrics.text();
  expect(text).toMatch(/embargo_posts_rejected_total\{list="private",reason="not-encrypted"\} [1-9]/);
  expect(text).not.toContain(privateList);
  // Nothing else is served there.
  expect((await fetch(`http://127.0.0.1:${daemon.metricsPort}/`)).status).toBe(404);
});

it('names private lists in labels only with metrics.listLabels: true', async () => {
  daemon.config.editServer({ metrics: { listLabels: true } });
  await daemon.waitForLog((line) => line.msg === 'config reloaded', 20_000);
  await refusedPost('counted by name');
  const text = await (await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`)).text();
  expect(text).toMatch(new RegExp(`embargo_posts_rejected_total\\{list="${privateList}",reason="not-encrypted"\\} 1`));
});
