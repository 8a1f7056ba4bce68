// The HTTP listener without a browser: security headers, what is not public, list keys and WKD checked with GnuPG, downloads, feed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archivedAtUrl } from '../../src/archive/urls.ts';
import { createWebServer, type WebServer } from '../../src/web/server.ts';
import { wkdHash, zBase32 } from '../../src/web/wkd.ts';
import { sanitizeMailHtml } from '../../src/web/render-message.ts';
import { announceList, applicationsList, buildMail, makeArchiveFixture, privateList, type ArchiveFixture } from '../helpers/archive.ts';

let fixture: ArchiveFixture;
let web: WebServer;
let base: string;

const wksClient = ['/usr/lib/gnupg/gpg-wks-client', '/usr/libexec/gpg-wks-client'].find((path) => existsSync(path));

const pngBytes = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

beforeAll(async () => {
  fixture = await makeArchiveFixture();
  await fixture.archive(
    applicationsList,
    await buildMail({
      subject: 'Attachments & <things> \u0001',
      messageId: 'attach/1@example.org',
      text: 'see attached',
      attachments: [
        { filename: 'evil.html', content: '<script>alert(1)</script>', contentType: 'text/html' },
        { filename: 'logo.png', content: pngBytes, contentType: 'image/png' },
        { filename: '../../etc/"passwd".exe', content: 'MZ', contentType: 'application/x-msdownload' },
      ],
    }),
    { receivedAt: new Date('2026-02-01T00:00:00Z') },
  );
  await fixture.archive(privateList, await buildMail({ subject: 'private thing', messageId: 'private@example.org', text: 'secret' }));
  web = createWebServer({ db: fixture.db, config: () => fixture.config, listKeys: fixture.listKeys, logger: fixture.logger });
  await web.start();
  base = `http://127.0.0.1:${web.port()}`;
});

afterAll(async () => {
  await web?.stop();
  fixture?.cleanup();
});

function gpg(home: string, args: string[], input?: Buffer): string {
  return execFileSync('gpg', ['--homedir', home, '--batch', '--no-tty', '--with-colons', ...args], { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
}

describe('http listener', () => {
  it('sends a strict CSP, nosniff and no-frame on every page, and serves its own stylesheet', async () => {
    for (const path of ['/', `/lists/${applicationsList}/`, '/no/such/page', `/lists/${applicationsList}/search?q=x`]) {
      const response = await fetch(base + path);
      expect(response.headers.get('content-security-policy'), path).toBe(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      );
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(await response.text()).not.toContain('<script');
    }
    const css = await fetch(`${base}/style.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await css.text()).toContain('max-width');
  });

  it('shows nothing of private or unknown lists, refuses writes and bad paths', async () => {
    for (const path of [`/lists/${privateList}/`, `/lists/${announceList}/atom.xml`, `/lists/${privateList}/msg/private%40example.org`, '/lists/nope/']) {
      const response = await fetch(base + path);
      expect(response.status, path).toBe(404);
      expect(await response.text()).not.toContain('private thing');
    }
    expect((await fetch(`${base}/lists/${applicationsList}/msg/%E0%A4%A`)).status).toBe(400);
    const post = await fetch(`${base}/`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${base}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('escapes hostile subjects on index pages and in the Atom feed', async () => {
    const month = await (await fetch(`${base}/lists/${applicationsList}/2026-02/`)).text();
    expect(month).toContain('Attachments &amp; &lt;things&gt;');
    expect(month).not.toContain('<things>');
    const feed = await fetch(`${base}/lists/${applicationsList}/atom.xml`);
    expect(feed.headers.get('content-type')).toBe('application/atom+xml; charset=utf-8');
    const xml = await feed.text();
    expect(xml).toContain('<title type="text">Attachments &amp; &lt;things&gt; </title>');
    expect(xml).not.toContain('\u0001');
    expect(xml).toContain(`<id>${archivedAtUrl(fixture.config, applicationsList, 'attach/1@example.org')}</id>`);
  });

  it('serves attachments as downloads with safe types only', async () => {
    const path = `${base}/lists/${applicationsList}/msg/${encodeURIComponent('attach/1@example.org')}/attachment/`;
    const html = await fetch(`${path}0`);
    expect(html.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(html.headers.get('content-disposition')).toBe(`attachment; filename="evil.html"; filename*=UTF-8''evil.html`);
    expect(html.headers.get('content-security-policy')).toContain('sandbox');
    expect(await html.text()).toBe('<script>alert(1)</script>');
    // Downloads are not kept by browsers or proxies: a message taken down is gone.
    expect(html.headers.get('cache-control')).toBe('no-store');
    const png = await fetch(`${path}1`);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await png.arrayBuffer()).equals(pngBytes)).toBe(true);
    const exe = await fetch(`${path}2`);
    expect(exe.headers.get('content-type')).toBe('application/octet-stream');
    expect(exe.headers.get('content-disposition')).toMatch(/^attachment; filename="[^"/\\]*"; /);
    expect((await fetch(`${path}3`)).status).toBe(404);
    const pageReply = await fetch(`${base}/lists/${applicationsList}/msg/${encodeURIComponent('attach/1@example.org')}`);
    // Archive pages are revalidated on every view.
    expect(pageReply.headers.get('cache-control')).toBe('no-cache');
    const page = await pageReply.text();
    expect(page).toContain('/attachment/0" download>evil.html</a>');
  });

  it('serves each list key at /keys/NAME.asc, importable by GnuPG with the list fingerprint', async () => {
    const home = mkdtempSync(join(tmpdir(), 'embargo-gpg-'));
    try {
      for (const name of [announceList, applicationsList]) {
        const response = await fetch(`${base}/keys/${name}.asc`);
        expect(response.headers.get('content-type')).toBe('application/pgp-keys');
        const armored = Buffer.from(await response.arrayBuffer());
        expect(armored.toString()).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
        const shown = gpg(home, ['--import-options', 'show-only', '--import'], armored);
        expect(shown).toContain(`fpr:::::::::${fixture.listKey(name).fingerprint}:`);
      }
      expect((await fetch(`${base}/keys/nope.asc`)).status).toBe(404);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('answers Web Key Directory lookups at the hashes GnuPG computes, with the binary list key', async () => {
    // gpg-wks-client ships with Debian's gnupg package, which .ci/run installs.
    expect(wksClient, 'gpg-wks-client not found').toBeDefined();
    const home = mkdtempSync(join(tmpdir(), 'embargo-gpg-'));
    try {
      for (const name of [announceList, privateList, applicationsList]) {
        const address = `${name}@${fixture.config.server.domain}`;
        const [hash, printedAddress] = execFileSync(wksClient!, ['--print-wkd-hash', address]).toString().trim().split(' ');
        expect(printedAddress).toBe(address);
        const url = new URL(execFileSync(wksClient!, ['--print-wkd-url', address]).toString().trim());
        expect(url.pathname).toBe(`/.well-known/openpgpkey/${fixture.config.server.domain}/hu/${hash}`);
        expect(wkdHash(name)).toBe(hash);
        // Direct method, then the advanced method's path on the same host.
        for (const path of [`/.well-known/openpgpkey/hu/${hash}?l=${name}`, `${url.pathname}${url.search}`]) {
          const response = await fetch(base + path);
          expect(response.status, path).toBe(200);
          expect(response.headers.get('content-type')).toBe('application/octet-stream');
          const binary = Buffer.from(await response.arrayBuffer());
          expect(binary[0]! & 0x80).toBe(0x80); // an OpenPGP packet, not armor
          writeFileSync(join(home, `${name}.gpg`), binary);
          gpg(home, ['--import', join(home, `${name}.gpg`)]);
          const listed = gpg(home, ['--list-keys', address]);
          expect(listed).toContain(`fpr:::::::::${fixture.listKey(name).fingerprint}:`);
        }
      }
      expect((await fetch(`${base}/.well-known/openpgpkey/hu/${wkdHash('nobody')}`)).status).toBe(404);
      expect((await fetch(`${base}/.well-known/openpgpkey/other.example/hu/${wkdHash(announceList)}`)).status).toBe(404);
      const policy = await fetch(`${base}/.well-known/openpgpkey/policy`);
      expect(policy.status).toBe(200);
      expect((await fetch(`${base}/.well-known/openpgpkey/${fixture.config.server.domain}/policy`)).status).toBe(200);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('computes z-base-32 like GnuPG (known vector, case folding)', () => {
    // From draft-koch-openpgp-webkey-service: Joe.Doe@Example.ORG.
    expect(wkdHash('Joe.Doe')).toBe('iy9q119eutrkn8s1mk4r39qejnbu3n5q');
    expect(zBase32(Buffer.from([0xf0, 0xbf, 0xc7]))).toBe('6n9hq');
  });

  it('answers health, and not metrics (they have their own listener)', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(404);
    expect(await metrics.text()).not.toContain('embargo_');
  });

  it('builds Archived-At URLs that resolve to the message page', async () => {
    const local = archivedAtUrl(fixture.config, applicationsList, '<attach/1@example.org>');
    expect(local).toBe(`http://127.0.0.1:0/lists/${applicationsList}/msg/attach%2F1%40example.org`);
    const configured = { ...fixture.config, server: { ...fixture.config.server, http: { ...fixture.config.server.http, publicUrl: 'https://lists.example.org/archive/' } } };
    expect(archivedAtUrl(configured, applicationsList, 'attach/1@example.org')).toBe(
      `https://lists.example.org/archive/lists/${applicationsList}/msg/attach%2F1%40example.org`,
    );
    const page = await fetch(base + new URL(local).pathname);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('attach/1@example.org');
  });

  it('sanitizes HTML to harmless tags and attributes', () => {
    const clean = sanitizeMailHtml(
      '<p onclick="x()" style="color:red">hi <a href="javascript:alert(1)">j</a> <a href="https://example.org/">ok</a></p><img src="https://t.example/p.gif"><img src="data:image/png;base64,iVBORw0KGgo=" alt="inline"><script>bad()</script><style>p{}</style>',
    );
    expect(clean).toBe(
      '<p>hi <a rel="nofollow noopener noreferrer">j</a> <a href="https://example.org/" rel="nofollow noopener noreferrer">ok</a></p><img src="data:image/png;base64,iVBORw0KGgo=" alt="inline" />',
    );
  });
});
