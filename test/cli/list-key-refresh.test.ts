// `embargo list-key import` and `embargo check` warn about a list key self-signed with SHA-1; `list-key refresh-signatures` re-signs it (same key), after which Sequoia verifies the list's copies.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeTestConfig, repoRoot, startTestDaemon } from '../helpers/daemon.ts';
import type { TestConfig, TestDaemon } from '../helpers/daemon.ts';
import { createGpgHome } from '../helpers/gpg.ts';
import type { GpgHome } from '../helpers/gpg.ts';
import { armoredPart, copiesOfPost, newMessageId, runCli } from '../helpers/lists.ts';
import { startRelayPeer } from '../helpers/relay.ts';
import type { RelayPeer } from '../helpers/relay.ts';
import { sendMail } from '../helpers/smtp.ts';
import { sqDecryptAndVerify } from '../helpers/sq.ts';

const list = 'xen-security-issues';
const listAddress = `${list}@lists.example.org`;
let relay: RelayPeer;
let config: TestConfig;
let daemon: TestDaemon | undefined;
let gpg: GpgHome;

beforeAll(async () => {
  relay = await startRelayPeer();
  config = makeTestConfig({ relay: { host: relay.host, port: relay.port } });
  gpg = await createGpgHome();
});

afterAll(async () => {
  await daemon?.stop();
  config?.cleanup();
  await relay?.close();
  await gpg?.cleanup();
});

/** The digest algorithms of the self-signatures in a public key, as gpg --list-packets shows them (2 = SHA-1, 10 = SHA-512). */
async function selfSignatureDigests(armored: string): Promise<number[]> {
  const packets = await gpg.listPackets(armored);
  return [...packets.matchAll(/digest algo (\d+)/g)].map((match) => Number(match[1]));
}

it('warns about SHA-1 self-signatures at import and check, re-signs them with SHA-512 keeping the key, and members verify with sq', async () => {
  // A list key as an older tool made it: RSA, every self-signature SHA-1 (openpgp.js refuses SHA-1 on EdDSA keys outright).
  const made = await gpg.generateKey({ address: listAddress, name: `${list} mailing list`, algorithm: 'rsa2048', extraArgs: ['--cert-digest-algo', 'SHA1'] });
  expect(await selfSignatureDigests(await gpg.exportPublic(made.fingerprint))).toEqual([2, 2]);
  const secretFile = join(config.root, 'sha1-list-key.asc');
  writeFileSync(secretFile, await gpg.exportSecret(made.fingerprint));

  const imported = await runCli(['list-key', 'import', list, secretFile, '--config', config.configDir]);
  expect(imported.code, imported.stderr).toBe(0);
  expect(imported.stderr).toContain(`warning: the key of ${list} is self-signed with SHA-1 (user ID "${list} mailing list <${listAddress}>", subkey `);
  expect(imported.stderr).toContain(`embargo list-key refresh-signatures ${list}`);
  const checked = await runCli(['check', '--config', config.configDir]);
  expect(checked.code).toBe(0);
  expect(checked.stderr).toContain(`warning: the key of ${list} is self-signed with SHA-1`);

  const refreshed = await runCli(['list-key', 'refresh-signatures', list, '--config', config.configDir]);
  expect(refreshed.code, refreshed.stderr).toBe(0);
  expect(refreshed.stdout.trim()).toBe(made.fingerprint);
  const publicKey = (await runCli(['list-key', list, '--config', config.configDir])).stdout;
  expect(await selfSignatureDigests(publicKey)).toEqual([10, 10]);
  // The same key: gpg sees the same primary fingerprint and encryption subkey.
  const shown = await gpg.run(['--with-colons', '--show-keys'], publicKey);
  expect(shown.stdout.toString().split('\n').filter((line) => line.startsWith('fpr:')).map((line) => line.split(':')[9])).toEqual([made.fingerprint, made.encryptionSubkey]);
  const after = await runCli(['check', '--config', config.configDir]);
  expect(after.stderr).not.toContain('SHA-1');

  // The daemon on the refreshed key: a post by the (demo) security team reaches Vendor A, and sq accepts the list's signature.
  daemon = await startTestDaemon({ config });
  const poster = await createGpgHome();
  try {
    await poster.importKey(readFileSync(join(repoRoot, 'examples/demo-keys/xenproject-security.secret.asc')));
    await poster.importKey(publicKey);
    const entity = 'Content-Type: text/plain; charset=utf-8\r\n\r\nXSA-997: checked with Sequoia.\r\n';
    const ciphertext = (await poster.encrypt(entity, { recipients: [made.fingerprint], signer: 'security@xenproject.example' })).toString().replace(/\r?\n/g, '\r\n');
    const messageId = newMessageId();
    const raw =
      `From: security@xenproject.example\r\nTo: ${listAddress}\r\nSubject: XSA-997\r\nMessage-ID: <${messageId}>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n` +
      'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="e"\r\n\r\n' +
      `--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--e\r\nContent-Type: application/octet-stream\r\n\r\n${ciphertext}\r\n--e--\r\n`;
    const sent = await sendMail({ port: daemon.smtpPort, from: 'security@xenproject.example', to: [listAddress], raw });
    expect(sent.ok, sent.text).toBe(true);
    const deadline = Date.now() + 30_000;
    const copyFor = () => copiesOfPost(relay.messages, sent.spoolId!).find((message) => message.to.includes('security@vendor-a.example'));
    while (!copyFor()) {
      if (Date.now() > deadline) throw new Error('no copy for Vendor A');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const sq = await sqDecryptAndVerify(armoredPart(copyFor()!.raw), readFileSync(join(repoRoot, 'examples/demo-keys/vendor-a.secret.asc'), 'utf8'), publicKey);
    expect(sq.code, sq.stderr).toBe(0);
    expect(sq.stdout.toString()).toContain('XSA-997: checked with Sequoia.');
  } finally {
    await poster.cleanup();
  }
  // Seven CLI runs, an RSA key and a daemon start: minutes on a loaded 2-core machine.
}, 300_000);
