// Relay credentials from relay.auth.passFile or relay.auth.passEnv: the daemon logs in to a relay that requires AUTH and delivers.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { publicListOf, startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { startRelayPeer, type RelayPeer } from '../helpers/relay.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const list = 'predisclosure-applications@lists.example.org';
const lists = { 'predisclosure-applications': publicListOf([{ email: 'security@vendor-a.example', keyFile: 'vendor-a.asc' }]) };
const credentials = { user: 'lists', pass: 'correct horse battery staple' };

describe('relay password from a file or the environment', () => {
  const running: Array<{ daemon: TestDaemon; relay: RelayPeer }> = [];
  afterAll(async () => {
    for (const { daemon, relay } of running) {
      await daemon.stop();
      await relay.close();
    }
    delete process.env.EMBARGO_TEST_RELAY_PASSWORD;
  });

  async function deliversWith(auth: Record<string, string>, files: Record<string, string> = {}): Promise<void> {
    const relay = await startRelayPeer({ auth: credentials });
    const daemon = await startTestDaemon({ relay: { host: relay.host, port: relay.port }, server: { relay: { auth } }, lists, files });
    running.push({ daemon, relay });
    const from = 'applicant@vendor.example';
    expect((await sendMail({ port: daemon.smtpPort, from, to: [list], raw: makeMessage({ from, to: list }) })).code).toBe(250);
    await relay.waitForMessages(1, 60_000);
    expect(relay.deliveredTo('security@vendor-a.example')).toHaveLength(1);
  }

  it('relay.auth.passFile: the password is read from the file next to server.yaml (a final newline is not part of it)', async () => {
    await deliversWith({ user: credentials.user, passFile: 'relay-password' }, { 'relay-password': `${credentials.pass}\n` });
  });

  it('relay.auth.passEnv: the password is read from the environment variable', async () => {
    process.env.EMBARGO_TEST_RELAY_PASSWORD = credentials.pass;
    await deliversWith({ user: credentials.user, passEnv: 'EMBARGO_TEST_RELAY_PASSWORD' });
  });
});
