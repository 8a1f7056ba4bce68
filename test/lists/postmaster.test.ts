// End to end: postmaster@DOMAIN and <Postmaster> (RFC 5321 §4.5.1) are accepted and forwarded to the server admins.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announce, bodyText, decryptCopy, domain, headerOf, serverAdmin, startListWorld } from '../helpers/lists.ts';
import type { ListWorld } from '../helpers/lists.ts';
import { SmtpClient, makeMessage } from '../helpers/smtp.ts';

let world: ListWorld;

beforeAll(async () => {
  // security@xen.example has a key (as a list member): the forward to that admin is encrypted; serverAdmin has none.
  world = await startListWorld({ server: { admins: [serverAdmin, 'security@xen.example'] } });
});

afterAll(async () => {
  await world?.stop();
});

/** The attachment named original.eml of a clear notice, decoded. */
function attachedOriginal(raw: Buffer): string {
  const text = raw.toString();
  const start = text.indexOf('filename="original.eml"');
  expect(start).toBeGreaterThan(0);
  const body = text.slice(text.indexOf('\r\n\r\n', start) + 4);
  return Buffer.from(body.slice(0, body.indexOf('\r\n--')).replace(/\s+/g, ''), 'base64').toString();
}

describe('postmaster', () => {
  it('accepts postmaster@DOMAIN in any letter case and the bare <Postmaster> at RCPT; other unknown names stay 550', async () => {
    const client = await SmtpClient.connect(world.daemon.smtpPort);
    await client.ehlo();
    expect((await client.command('MAIL FROM:<someone@outside.example>')).code).toBe(250);
    for (const address of [`postmaster@${domain}`, `PostMaster@${domain.toUpperCase()}`, 'Postmaster', 'postmaster']) {
      expect((await client.command(`RCPT TO:<${address}>`)).code, address).toBe(250);
    }
    for (const address of [`webmaster@${domain}`, 'postmaster@outside.example', `postmaster+tag@${domain}`, `postmaster%outside.example@${domain}`, `abuse@${domain}`]) {
      expect((await client.command(`RCPT TO:<${address}>`)).code, address).toBe(550);
    }
    await client.quit();
  });

  it('forwards mail to <Postmaster> to every server admin, signed by the first list by name, encrypted to admins with a key', async () => {
    const mark = world.relay.messages.length;
    const raw = makeMessage({ from: world.outsider.address, to: `postmaster@${domain}`, subject: 'Your server', body: 'postmaster-marker: your MX refuses us\r\n' });
    const id = await world.send(world.outsider.address, ['Postmaster'], raw);
    expect(await world.waitForState(id, ['done', 'discarded', 'rejected', 'shunted'])).toBe('done');
    const messages = await world.settle(mark);
    expect(messages.flatMap((message) => message.to).sort()).toEqual([serverAdmin, world.security.address].sort());
    const clear = messages.find((message) => message.to.includes(serverAdmin))!;
    // advisories < applications < sharing: the first list by name speaks for the server.
    expect(headerOf(clear.raw, 'From')).toBe(`"${announce} list" <${announce}-owner@${domain}>`);
    expect(headerOf(clear.raw, 'Subject')).toBe(`postmaster@${domain}: message from ${world.outsider.address}`);
    expect(headerOf(clear.raw, 'Auto-Submitted')).toBe('auto-generated');
    expect(bodyText(clear.raw)).toContain(`A message to postmaster@${domain} from ${world.outsider.address} is attached as received.`);
    expect(attachedOriginal(clear.raw)).toContain('postmaster-marker: your MX refuses us');
    const encrypted = messages.find((message) => message.to.includes(world.security.address))!;
    expect(encrypted.raw.toString()).not.toContain('postmaster-marker');
    const opened = await decryptCopy(world.security, encrypted);
    expect(opened.has('DECRYPTION_OKAY')).toBe(true);
    expect(opened.args('VALIDSIG')?.at(-1)).toBe(world.listKeys[announce].fingerprint);
    expect(opened.stdout.toString()).toContain(`A message to postmaster@${domain}`);
  });

  it("sends the forward from the first list's VERP -bounces address, and a bounce to it is accepted and counted", async () => {
    const mark = world.relay.messages.length;
    const raw = makeMessage({ from: world.outsider.address, to: `postmaster@${domain}`, subject: 'Bounce me', body: 'where do bounces go?\r\n' });
    const id = await world.send(world.outsider.address, [`postmaster@${domain}`], raw);
    await world.waitForState(id, ['done']);
    const forward = (await world.settle(mark)).find((message) => message.to.includes(serverAdmin))!;
    // Not a null reverse-path: RFC 5321 4.5.5 keeps <> for delivery reports, and we want to learn that an admin address bounces.
    expect(forward.from).toMatch(new RegExp(`^${announce}-bounces\\+[0-9]+-[0-9a-f]{20}@${domain.replace(/\./g, '\\.')}$`));
    const dsn =
      `From: MAILER-DAEMON@mx.lists.example.org\r\nTo: ${forward.from}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-postmaster@mx.example>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n` +
      `--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n` +
      `--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n` +
      `Final-Recipient: rfc822; ${serverAdmin}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--b--\r\n`;
    const bounceId = await world.send('', [forward.from], dsn);
    expect(await world.waitForState(bounceId, ['done', 'discarded', 'rejected', 'shunted'])).toBe('done');
    const record = world.daemon.daemon!.db.prepare('SELECT bounces_total FROM member_bounces WHERE list = ? AND address = ?').get(announce, serverAdmin);
    expect(record).toEqual({ bounces_total: 1 });
  });

  it('does not forward its own notice coming back to postmaster@ (X-Loop of one of our addresses)', async () => {
    const mark = world.relay.messages.length;
    const raw = makeMessage({ from: `"${announce} list" <${announce}-owner@${domain}>`, to: `postmaster@${domain}`, subject: 'a notice' }).replace(
      'MIME-Version',
      `X-Loop: ${announce}@${domain}\r\nAuto-Submitted: auto-generated\r\nMIME-Version`,
    );
    const id = await world.send('', [`postmaster@${domain}`], raw);
    expect(await world.waitForState(id, ['done', 'discarded', 'rejected', 'shunted'])).toBe('discarded');
    expect(await world.settle(mark)).toHaveLength(0);
  });
});
