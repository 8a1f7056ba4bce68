// DKIM: `embargo dkim generate` makes the key and DNS record; every copy the daemon sends verifies with dkimpy against that record, and not after a one-byte change.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestConfig, publicListOf, startTestDaemon, type TestConfig, type TestDaemon } from '../helpers/daemon.ts';
import { verifyDkim } from '../helpers/dkim.ts';
import { runCli } from '../helpers/lists.ts';
import { startRelayPeer, type RelayPeer } from '../helpers/relay.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const list = 'predisclosure-applications@lists.example.org';
const members = ['security@xenproject.example', 'security@vendor-a.example'];
const selector = 'test2026';

/** The message with one byte of its body changed (a letter, so no canonicalization can hide it). */
function alterOneBodyByte(raw: Buffer): Buffer {
  const altered = Buffer.from(raw);
  const bodyStart = altered.indexOf('\r\n\r\n') + 4;
  let at = bodyStart;
  while (!/[A-Za-z]/.test(String.fromCharCode(altered[at]))) at++;
  altered[at] = altered[at] === 0x41 ? 0x42 : 0x41;
  return altered;
}

describe('DKIM signing', () => {
  let relay: RelayPeer;
  let config: TestConfig;
  let daemon: TestDaemon | null = null;
  let record = '';

  beforeAll(async () => {
    relay = await startRelayPeer();
    config = makeTestConfig({
      relay: { host: relay.host, port: relay.port },
      server: { dkim: { selector } },
      lists: { 'predisclosure-applications': publicListOf(members.map((email, index) => ({ email, keyFile: index === 0 ? 'xenproject-security.asc' : 'vendor-a.asc' }))) },
    });
  });

  afterAll(async () => {
    await daemon?.stop();
    await relay.close();
    config.cleanup();
  });

  it('embargo dkim generate writes an RSA-2048 key (0600) and prints its TXT record; a second run refuses to replace it', async () => {
    const generated = await runCli(['dkim', 'generate', '--config', config.configDir]);
    expect(generated.code).toBe(0);
    record = generated.stdout.trim();
    expect(record).toMatch(new RegExp(`^${selector}\\._domainkey\\.lists\\.example\\.org\\. IN TXT \\( "v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+"( "[A-Za-z0-9+/=]+")* \\)$`));
    const keyFile = join(config.dataDir, 'dkim', `${selector}.key`);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const key = readFileSync(keyFile);

    const again = await runCli(['dkim', 'generate', '--config', config.configDir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('exists');
    expect(readFileSync(keyFile).equals(key)).toBe(true);
  });

  it("a member's copy verifies with dkimpy against the printed record; one changed body byte fails", async () => {
    expect(record).not.toBe('');
    daemon = await startTestDaemon({ config });
    const from = 'applicant@vendor.example';
    const sent = await sendMail({ port: daemon.smtpPort, from, to: [list], raw: makeMessage({ from, to: list, subject: 'application', body: 'Please add us to the list.\r\n' }) });
    expect(sent.code).toBe(250);
    await relay.waitForMessages(members.length, 60_000);

    for (const member of members) {
      const [copy] = relay.deliveredTo(member);
      const signature = /^DKIM-Signature:[^]*?(?=\r\n\S)/m.exec(copy.raw.toString('latin1'))?.[0] ?? '';
      expect(signature).toContain('d=lists.example.org');
      expect(signature).toContain(`s=${selector}`);
      expect(signature.replace(/\s+/g, '')).toMatch(/h=[^;]*\bFrom\b/i);
      expect(await verifyDkim(copy.raw, record)).toBe(true);
      expect(await verifyDkim(alterOneBodyByte(copy.raw), record)).toBe(false);
    }
  });
});
