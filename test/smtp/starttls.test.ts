// STARTTLS with a configured certificate: offered, negotiated with a verifiable certificate, mail accepted inside TLS, and a renewed certificate served without a restart.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { SmtpClient, makeMessage, sendMail } from '../helpers/smtp.ts';

const list = 'xen-security-issues@lists.example.org';

/** A self-signed certificate for lists.example.org (key.pem, cert.pem in `dir`, or under other names), returned as PEM. */
function makeCertificate(dir: string, names = { key: 'key.pem', cert: 'cert.pem' }): string {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=lists.example.org', '-addext', 'subjectAltName=DNS:lists.example.org',
    '-keyout', join(dir, names.key), '-out', join(dir, names.cert),
  ], { stdio: 'ignore' });
  return readFileSync(join(dir, names.cert), 'utf8');
}

/** The fingerprint of the certificate the daemon presents on a new connection's STARTTLS. */
async function servedFingerprint(port: number): Promise<string> {
  const client = await SmtpClient.connect(port);
  await client.ehlo();
  await client.startTls({ rejectUnauthorized: false });
  const fingerprint = client.tlsSocket!.getPeerCertificate().fingerprint256;
  await client.quit();
  return fingerprint;
}

describe('smtp STARTTLS', () => {
  let certDir: string;
  let cert: string;
  let daemon: TestDaemon;

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'embargo-tls-'));
    cert = makeCertificate(certDir);
    daemon = await startTestDaemon({ server: { smtp: { tls: { key: join(certDir, 'key.pem'), cert: join(certDir, 'cert.pem') } } } });
  });
  afterAll(async () => {
    await daemon?.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  it('advertises STARTTLS, presents the configured certificate, and accepts mail over TLS', async () => {
    const client = await SmtpClient.connect(daemon.smtpPort);
    const ehlo = await client.ehlo();
    expect(ehlo.lines).toContain('250-STARTTLS');
    expect(ehlo.text).not.toContain('AUTH');
    const reply = await client.startTls({ ca: cert, servername: 'lists.example.org' });
    expect(reply.code).toBe(220);
    expect(client.tlsSocket?.authorized).toBe(true);
    expect(client.tlsSocket?.getPeerCertificate().subject.CN).toBe('lists.example.org');
    const again = await client.ehlo();
    expect(again.text).not.toContain('STARTTLS');
    const result = await sendMail({ port: daemon.smtpPort, client, from: 'sender@example.net', to: [list], raw: makeMessage({ to: list }) });
    expect(result).toMatchObject({ ok: true, code: 250 });
    await client.quit();
  });

  it('still refuses relaying inside TLS', async () => {
    const result = await sendMail({
      port: daemon.smtpPort,
      from: 'sender@example.net',
      to: ['victim@outside.example'],
      raw: makeMessage(),
      startTls: { ca: cert, servername: 'lists.example.org' },
    });
    expect(result).toMatchObject({ ok: false, stage: 'rcpt', code: 550 });
  });

  it('serves a certificate swapped on disk on the next STARTTLS, without a restart', async () => {
    const before = await servedFingerprint(daemon.smtpPort);
    // As a renewal does it: the new files are written beside the old ones and renamed over them.
    const renewed = makeCertificate(certDir, { key: 'key.pem.new', cert: 'cert.pem.new' });
    renameSync(join(certDir, 'key.pem.new'), join(certDir, 'key.pem'));
    renameSync(join(certDir, 'cert.pem.new'), join(certDir, 'cert.pem'));
    const { X509Certificate } = await import('node:crypto');
    const expected = new X509Certificate(renewed).fingerprint256;
    expect(expected).not.toBe(before);
    const deadline = Date.now() + 30_000;
    let served = before;
    while (served !== expected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      served = await servedFingerprint(daemon.smtpPort);
    }
    expect(served).toBe(expected);
    // The same daemon (same port, same process) verifies against the new certificate and takes mail.
    const result = await sendMail({ port: daemon.smtpPort, from: 'sender@example.net', to: [list], raw: makeMessage({ to: list }), startTls: { ca: renewed, servername: 'lists.example.org' } });
    expect(result).toMatchObject({ ok: true, code: 250 });
    cert = renewed;
  });

  it('keeps the served certificate while the new key and certificate do not fit together', async () => {
    const before = await servedFingerprint(daemon.smtpPort);
    // Half a renewal: a new key next to the old certificate.
    makeCertificate(certDir, { key: 'key.pem.new', cert: 'unused.pem' });
    renameSync(join(certDir, 'key.pem.new'), join(certDir, 'key.pem'));
    await daemon.waitForLog((line) => line.msg === 'smtp tls key and certificate do not fit together; keeping the previous certificate', 30_000);
    expect(await servedFingerprint(daemon.smtpPort)).toBe(before);
  });
});

describe('embargo serve and SIGHUP', () => {
  it('re-reads the certificate on SIGHUP and keeps running (SIGHUP would otherwise end the process)', async () => {
    const certDir = mkdtempSync(join(tmpdir(), 'embargo-tls-'));
    const first = makeCertificate(certDir);
    const child = await startTestDaemon({ mode: 'child', server: { smtp: { tls: { key: join(certDir, 'key.pem'), cert: join(certDir, 'cert.pem') } } } });
    try {
      const renewed = makeCertificate(certDir, { key: 'key.pem.new', cert: 'cert.pem.new' });
      renameSync(join(certDir, 'key.pem.new'), join(certDir, 'key.pem'));
      renameSync(join(certDir, 'cert.pem.new'), join(certDir, 'cert.pem'));
      child.child!.kill('SIGHUP');
      await child.waitForLog((line) => line.msg === 'smtp tls certificate reloaded', 30_000);
      const { X509Certificate } = await import('node:crypto');
      expect(await servedFingerprint(child.smtpPort)).toBe(new X509Certificate(renewed).fingerprint256);
      expect(new X509Certificate(first).fingerprint256).not.toBe(new X509Certificate(renewed).fingerprint256);
      expect(child.child!.exitCode).toBeNull();
    } finally {
      await child.stop();
      rmSync(certDir, { recursive: true, force: true });
    }
  });
});
