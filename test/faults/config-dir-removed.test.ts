// Fault: the config directory disappears while the daemon runs (a bad deploy, an rm -rf). The last good config stays and mail still flows.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { publicListOf, startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { startRelayPeer } from '../helpers/relay.ts';
import type { RelayPeer } from '../helpers/relay.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const list = 'predisclosure-applications@lists.example.org';
const member = 'security@xenproject.example';
let daemon: TestDaemon;
let relay: RelayPeer;
let saved: string;

beforeAll(async () => {
  relay = await startRelayPeer();
  daemon = await startTestDaemon({
    relay: { host: relay.host, port: relay.port },
    lists: {
      'predisclosure-applications': publicListOf([{ email: member, keyFile: 'xenproject-security.asc' }]),
    },
  });
  saved = mkdtempSync(join(tmpdir(), 'embargo-config-copy-'));
  cpSync(daemon.config.configDir, saved, { recursive: true });
});

afterAll(async () => {
  await daemon?.stop();
  await relay?.close();
  rmSync(saved, { recursive: true, force: true });
});

async function postAndDeliver(subject: string): Promise<void> {
  const before = relay.deliveredTo(member).length;
  const result = await sendMail({ port: daemon.smtpPort, from: 'applicant@vendor.example', to: [list], raw: makeMessage({ from: 'applicant@vendor.example', to: list, subject }) });
  expect(result.code, subject).toBe(250);
  const deadline = Date.now() + 15_000;
  while (relay.deliveredTo(member).length === before) {
    if (Date.now() > deadline) throw new Error(`"${subject}" was not delivered`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

it('keeps serving the last good config when the config directory is removed, and picks it up again when it returns', async () => {
  await postAndDeliver('before');
  rmSync(daemon.config.configDir, { recursive: true, force: true });
  const refused = await daemon.waitForLog((line) => line.msg === 'config change refused; still serving the last good config', 10_000);
  expect(JSON.stringify(refused.errors)).toMatch(/config/);

  // Lists, members, keys and the relay are all still known: mail to the list is taken and delivered.
  await postAndDeliver('while the config directory is gone');
  expect((await sendMail({ port: daemon.smtpPort, from: 'a@vendor.example', to: [`nobody@lists.example.org`], raw: makeMessage() })).code).toBe(550);
  expect((await fetch(`http://127.0.0.1:${daemon.httpPort}/healthz`)).status).toBe(200);

  // The directory comes back (a fixed deploy): it is read again, and mail goes on.
  const reloads = daemon.logs().filter((line) => line.msg === 'config reloaded').length;
  cpSync(saved, daemon.config.configDir, { recursive: true });
  await daemon.waitForLog((line) => line.msg === 'config reloaded' && daemon.logs().filter((entry) => entry.msg === 'config reloaded').length > reloads, 10_000);
  await postAndDeliver('after it returned');
  expect(daemon.logs().filter((line) => (line.level ?? 0) >= 60)).toEqual([]);
});
