// STARTTLS with a configured certificate: offered, negotiated with a verifiable certificate, and mail accepted inside TLS.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { SmtpClient, makeMessage, sendMail } from '../helpers/smtp.ts';

const list = 'xen-security-issues@lists.example.org';

describe('smtp STARTTLS', () => {
  let certDir: string;
  let cert: string;
  let daemon: TestDaemon;

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'embargo-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=lists.example.org', '-addext', 'subjectAltName=DNS:lists.example.org',
      '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'),
    ], { stdio: 'ignore' });
    cert = readFileSync(join(certDir, 'cert.pem'), 'utf8');
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
});
