// Archive through the real daemon: a private post leaves no plaintext in the database files; a public post is on the web at its Archived-At URL.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMbox } from '../../src/archive/mbox.ts';
import { announce, discussion, domain, headerOf, newMessageId, publicList, runCli, startListWorld, type ListWorld, type Person } from '../helpers/lists.ts';
import { releaseDue } from '../../src/advisories/release.ts';
import { ensureListKey, type ListKey } from '../../src/crypto/index.ts';

let world: ListWorld;

async function protectedPost(to: string, subject: string, body: string, options: { sender?: Person; innerHeaders?: string } = {}): Promise<{ raw: string; messageId: string }> {
  const messageId = newMessageId();
  const sender = options.sender ?? world.vendorA;
  const entity =
    `Content-Type: text/plain; charset=utf-8; protected-headers="v1"\r\nContent-Transfer-Encoding: 8bit\r\n` +
    `Subject: ${subject}\r\nFrom: ${sender.name} <${sender.address}>\r\nTo: ${to}\r\nMessage-ID: <${messageId}>\r\n${options.innerHeaders ?? ''}\r\n${body}\r\n`;
  const ciphertext = await sender.gpg.encrypt(entity, { recipients: [world.listKeys[to.split('@')[0]!]!.fingerprint], signer: sender.fingerprint });
  const boundary = 'enc-protected';
  return {
    messageId,
    raw:
      `From: ${sender.name} <${sender.address}>\r\nTo: ${to}\r\nSubject: ...\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${messageId}>\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
      `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
      `--${boundary}\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n${ciphertext.toString('utf8').replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`,
  };
}

beforeAll(async () => {
  world = await startListWorld({ announce: { publishTo: publicList, advisoryPattern: 'XSA-[0-9]+' } });
});
afterAll(async () => {
  await world?.stop();
});

describe('archive in the running daemon', () => {
  // The spool keeps the raw message as it arrived, so the test posts as Thunderbird and K-9 do: the real
  // Subject only inside the ciphertext (protected headers), "..." outside.
  it('stores a private list post encrypted: subject and body are not in the SQLite file or its WAL; export decrypts it', async () => {
    const subject = 'XSA-4242 fix for the vmexitquokka race';
    const body = 'Backport attached; the flimflamgoose path needs the second hunk too.';
    const to = `${discussion}@${domain}`;
    const post = await protectedPost(to, subject, body);
    const id = await world.send(world.vendorA.address, [to], post.raw);
    expect(await world.waitForState(id, ['done', 'held', 'rejected', 'shunted'])).toBe('done');
    await world.settle();

    const db = world.daemon.daemon!.db;
    const row = db.prepare('SELECT visibility, encrypted, subject, message_id FROM archive_entries WHERE list = ?').get(discussion);
    expect(row).toEqual({ visibility: 'private', encrypted: 1, subject: null, message_id: null });
    const dbFile = world.daemon.config.dbFile;
    const files = [dbFile, `${dbFile}-wal`].map((file) => readFileSync(file));
    // (The Message-ID is in the outer header too, so the spool row holds it; the archive row does not, checked above.)
    for (const needle of ['vmexitquokka', 'flimflamgoose']) {
      for (const [index, bytes] of files.entries()) expect(bytes.includes(Buffer.from(needle)), `${needle} in file ${index}`).toBe(false);
    }

    const mbox = join(world.daemon.config.root, 'sharing.mbox');
    const exported = await runCli(['archive', 'export', discussion, '--mbox', mbox, '--config', world.daemon.config.configDir]);
    expect(exported.code, exported.stderr).toBe(0);
    const messages = await Promise.all(parseMbox(readFileSync(mbox)).map((message) => simpleParser(message)));
    expect(messages.map((message) => message.subject)).toEqual([subject]);
    expect(messages[0]!.text).toContain(body);
    expect(messages[0]!.messageId).toBe(`<${post.messageId}>`);
  });

  it('publishes a public list post at the URL of its Archived-At header', async () => {
    const to = `${publicList}@${domain}`;
    const messageId = newMessageId();
    const raw =
      `From: Applicant <applicant@corp.example>\r\nTo: ${to}\r\nSubject: Application: zebrafrost Hosting\r\n` +
      `Date: ${new Date().toUTCString()}\r\nMessage-ID: <${messageId}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWe host 900 Xen guests.\r\n`;
    const mark = world.relay.messages.length;
    const id = await world.send('applicant@corp.example', [to], raw);
    expect(await world.waitForState(id, ['done', 'held', 'rejected', 'shunted'])).toBe('done');
    const copies = (await world.settle(mark)).filter((message) => headerOf(message.raw, 'Message-ID') === `<${messageId}>`);
    expect(copies.length).toBeGreaterThan(0);
    const archivedAt = headerOf(copies[0]!.raw, 'Archived-At');
    expect(archivedAt).toMatch(/^<http:\/\/.+>$/);
    const url = new URL(archivedAt!.slice(1, -1));
    const base = `http://127.0.0.1:${world.daemon.httpPort}`;
    const page = await fetch(base + url.pathname);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Application: zebrafrost Hosting');
    expect(html).toContain('We host 900 Xen guests.');
    const search = await (await fetch(`${base}/lists/${publicList}/search?q=zebrafrost`)).text();
    expect(search).toContain(url.pathname);
  });

  it('archives and serves the body of a plain mail with no MIME header fields (as swaks or a script sends it)', async () => {
    const to = `${publicList}@${domain}`;
    const messageId = newMessageId();
    const raw =
      `From: applicant@corp.example\r\nTo: ${to}\r\nSubject: Application: quokkaline\r\nDate: ${new Date().toUTCString()}\r\n` +
      `Message-ID: <${messageId}>\r\n\r\nWe ship Xen in quokkaline appliances.\r\n\r\nSecond paragraph.\r\n`;
    const mark = world.relay.messages.length;
    const id = await world.send('applicant@corp.example', [to], raw);
    expect(await world.waitForState(id, ['done', 'held', 'rejected', 'shunted'])).toBe('done');
    const copies = (await world.settle(mark)).filter((message) => headerOf(message.raw, 'Message-ID') === `<${messageId}>`);
    expect(copies[0]!.raw.toString()).toContain('We ship Xen in quokkaline appliances.');
    const url = new URL(headerOf(copies[0]!.raw, 'Archived-At')!.slice(1, -1));
    const base = `http://127.0.0.1:${world.daemon.httpPort}`;
    const html = await (await fetch(base + url.pathname)).text();
    expect(html).toContain('We ship Xen in quokkaline appliances.');
    expect(html).toContain('Second paragraph.');
  });

  it('publishes an advisory posted with X-Embargo-Until (inside the encryption) only when its time has passed', async () => {
    const to = `${announce}@${domain}`;
    const post = await protectedPost(to, 'XSA-4343: the narwhalbyte overflow', 'A guest can overflow narwhalbyte buffers.', {
      sender: world.security,
      innerHeaders: 'X-Embargo-Until: 2030-01-01T12:00:00Z\r\n',
    });
    const id = await world.send(world.security.address, [to], post.raw);
    expect(await world.waitForState(id, ['done', 'held', 'rejected', 'shunted'])).toBe('done');
    await world.settle();
    const base = `http://127.0.0.1:${world.daemon.httpPort}`;
    const searchPage = async () => (await (await fetch(`${base}/lists/${publicList}/search?q=narwhalbyte`)).text()).replace(/ value="[^"]*"/, '');
    const feed = async () => (await fetch(`${base}/lists/${publicList}/atom.xml`)).text();
    expect(await searchPage()).not.toContain('narwhalbyte');
    expect(await feed()).not.toContain('narwhalbyte');

    const daemon = world.daemon.daemon!;
    const keys = new Map<string, ListKey>();
    for (const name of daemon.config().lists.keys()) keys.set(name, await ensureListKey({ dataDir: world.daemon.config.dataDir, listName: name, domain }));
    const options = { config: daemon.config, listKeys: (name: string) => keys.get(name) };
    expect(await releaseDue(daemon.db, new Date('2030-01-01T11:59:59Z'), options)).toEqual([]);
    expect(await searchPage()).not.toContain('narwhalbyte');
    const [released] = await releaseDue(daemon.db, new Date('2030-01-01T12:00:00Z'), options);
    expect(released).toMatchObject({ status: 'released', targetList: publicList, advisoryId: 'XSA-4343' });
    // Published under the server's own Message-ID, never the poster's (which travelled in clear and can be squatted).
    const publishedId = released.status === 'released' ? released.messageId! : '';
    expect(publishedId).toMatch(/^xsa-4343\.r1\.[0-9a-f]{16}@/);
    expect(await searchPage()).toContain(encodeURIComponent(publishedId));
    expect(await searchPage()).not.toContain(encodeURIComponent(post.messageId));
    expect(await feed()).toContain('XSA-4343: the narwhalbyte overflow');
  });
});
