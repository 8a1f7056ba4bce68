// End to end: the public list — double opt-in subscription, clear signed posts with list headers, loops, bounces and auto-replies stopped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyText, domain, headerOf, publicList, startListWorld } from '../helpers/lists.ts';
import type { ListWorld } from '../helpers/lists.ts';
import type { RelayMessage } from '../helpers/relay.ts';
import { makeMessage } from '../helpers/smtp.ts';

let world: ListWorld;
const listAddress = `${publicList}@${domain}`;
const requestAddress = `${publicList}-request@${domain}`;
const subscriber = 'reader@subscriber.example';
const applicant = 'Alice Applicant <alice@applicant.example>';

beforeAll(async () => {
  world = await startListWorld();
});

afterAll(async () => {
  await world?.stop();
});

const toOf = (messages: RelayMessage[], address: string) => messages.filter((message) => message.to.includes(address));

/** The first part of a multipart/signed message, byte for byte as signed, and its detached signature. */
function signedParts(raw: Buffer): { content: string; signature: string } {
  const text = raw.toString();
  const boundary = /boundary="?([^";\r\n]+)"?/.exec(text.split(/\r\n\r\n/)[0])![1];
  const parts = text.split(`--${boundary}`);
  const content = parts[1].replace(/^\r\n/, '').replace(/\r\n$/, '');
  const signature = /-----BEGIN PGP SIGNATURE-----[\s\S]*?-----END PGP SIGNATURE-----/.exec(parts[2])![0];
  return { content, signature };
}

async function post(from: string, raw: string, envelope = from.replace(/^.*</, '').replace(/>$/, '')): Promise<{ id: string; messages: RelayMessage[]; state: string }> {
  const mark = world.relay.messages.length;
  const id = await world.send(envelope, [listAddress], raw);
  const state = await world.waitForState(id, ['done', 'rejected', 'discarded', 'held', 'shunted']);
  return { id, state, messages: await world.settle(mark) };
}

describe('public list', () => {
  it('subscribes with a confirmation reply (double opt-in)', async () => {
    let mark = world.relay.messages.length;
    const id = await world.send(subscriber, [requestAddress], makeMessage({ from: subscriber, to: requestAddress, subject: 'subscribe', body: '' }));
    expect(await world.waitForState(id, ['done', 'discarded', 'shunted'])).toBe('done');
    let messages = await world.settle(mark);
    const confirmation = toOf(messages, subscriber).find((message) => /^confirm [0-9a-f]+$/.test(headerOf(message.raw, 'Subject') ?? ''));
    expect(confirmation).toBeDefined();
    const token = headerOf(confirmation!.raw, 'Subject')!.split(' ')[1];
    expect(headerOf(confirmation!.raw, 'Reply-To')).toBe(requestAddress);
    // Not subscribed until the confirmation comes back.
    const db = world.daemon.daemon!.db;
    expect(db.prepare('SELECT COUNT(*) AS count FROM subscribers WHERE address = ?').get(subscriber)).toEqual({ count: 0 });

    mark = world.relay.messages.length;
    const confirmId = await world.send(
      subscriber,
      [requestAddress],
      makeMessage({ from: subscriber, to: requestAddress, subject: `Re: confirm ${token}`, body: '> Someone (hopefully you) asked to subscribe\r\n' }),
    );
    expect(await world.waitForState(confirmId, ['done'])).toBe('done');
    messages = await world.settle(mark);
    expect(bodyText(toOf(messages, subscriber)[0].raw)).toContain('now subscribed');
    expect(db.prepare('SELECT COUNT(*) AS count FROM subscribers WHERE list = ? AND address = ?').get(publicList, subscriber)).toEqual({ count: 1 });
  });

  it("delivers a non-member's post in clear, signed by the list, with list headers and the sender named", async () => {
    const raw = makeMessage({ from: applicant, to: listAddress, subject: 'Application: Example Corp', body: 'We ship Xen in our appliances.\r\n', messageId: '<application-1@applicant.example>' });
    const { state, messages } = await post(applicant, raw);
    expect(state).toBe('done');
    const copies = messages.filter((message) => headerOf(message.raw, 'Message-ID') === '<application-1@applicant.example>');
    expect(copies.flatMap((message) => message.to).sort()).toEqual([subscriber, world.security.address].sort());
    const copy = copies[0].raw;
    expect(headerOf(copy, 'From')).toBe(`"Alice Applicant via ${publicList}" <${listAddress}>`);
    expect(headerOf(copy, 'Subject')).toBe('Application: Example Corp');
    expect(headerOf(copy, 'List-Id')).toContain(`<${publicList}.${domain}>`);
    expect(headerOf(copy, 'List-Post')).toBe(`<mailto:${listAddress}>`);
    expect(headerOf(copy, 'List-Unsubscribe')).toBe(`<mailto:${requestAddress}?subject=unsubscribe>`);
    expect(headerOf(copy, 'List-Owner')).toBe(`<mailto:${publicList}-owner@${domain}>`);
    expect(headerOf(copy, 'List-Archive')).toMatch(/^<http.*>$/);
    expect(headerOf(copy, 'Archived-At')).toMatch(/^<http.*application-1.*>$/);
    expect(headerOf(copy, 'Precedence')).toBe('list');
    const text = copy.toString();
    expect(text).toContain('We ship Xen in our appliances.');
    expect(bodyText(copy)).toContain('Alice Applicant <alice@applicant.example>');
    const { content, signature } = signedParts(copy);
    const verified = await world.vendorA.gpg.verify(content.replace(/\r?\n/g, '\r\n'), signature);
    expect(verified.has('GOODSIG')).toBe(true);
    expect(verified.args('VALIDSIG')?.at(-1)).toBe(world.listKeys[publicList].fingerprint);
  });

  it("keeps intake's Received field (the poster's address) out of the copies and the archive, and still knows the same bytes again", async () => {
    const raw = makeMessage({ from: applicant, to: listAddress, subject: 'Traced application', body: 'From our network.\r\n', messageId: '<application-traced@applicant.example>' });
    const first = await post(applicant, raw);
    expect(first.state).toBe('done');
    const stored = world.daemon.daemon!.db.prepare('SELECT raw FROM spool WHERE id = ?').get(first.id) as { raw: Buffer };
    expect(stored.raw.toString()).toMatch(/^Received: from \S+ \(\[127\.0\.0\.1\]\)/);
    expect(first.messages.length).toBeGreaterThan(0);
    for (const copy of first.messages) {
      expect(copy.raw.toString()).not.toMatch(/^Received:/im);
      expect(copy.raw.toString()).not.toContain('[127.0.0.1]');
    }
    const archived = world.daemon.daemon!.db.prepare('SELECT message FROM archive_entries WHERE message_id = ?').get('application-traced@applicant.example') as { message: Buffer };
    expect(archived.message.toString()).not.toMatch(/^Received:/im);
    // A retransmission of the very same bytes gets another spool id, so another Received field: still a duplicate by its bytes.
    const again = await post(applicant, raw);
    expect(again.state).toBe('discarded');
    const reason = world.daemon.daemon!.db.prepare('SELECT reason FROM spool WHERE id = ?').get(again.id) as { reason: string };
    expect(reason.reason).toContain(`duplicate of ${first.id} (same bytes)`);
    expect(again.messages).toHaveLength(0);
  });

  it('does not redistribute an auto-reply', async () => {
    const raw = makeMessage({ from: 'bob@vacation.example', to: listAddress, subject: 'Out of office', body: 'I am away.' }).replace('MIME-Version', 'Auto-Submitted: auto-replied\r\nMIME-Version');
    const { state, messages } = await post('bob@vacation.example', raw);
    expect(state).toBe('discarded');
    expect(messages).toHaveLength(0);
  });

  it('does not redistribute a bounce (empty return path, delivery report)', async () => {
    const raw =
      `From: Mail Delivery System <mailer-daemon@mx.example>\r\nTo: ${listAddress}\r\nSubject: Undelivered Mail Returned to Sender\r\n` +
      `Message-ID: <bounce-1@mx.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n` +
      `--r\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@y.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--r--\r\n`;
    const { state, messages } = await post('mailer-daemon@mx.example', raw, '');
    expect(state).toBe('discarded');
    expect(messages).toHaveLength(0);
  });

  it('breaks a mail loop: its own copy coming back is not sent again', async () => {
    const raw = makeMessage({ from: applicant, to: listAddress, subject: 'Looping', body: 'round and round' }).replace(
      'MIME-Version',
      `List-Id: <${publicList}.${domain}>\r\nX-Loop: ${listAddress}\r\nMIME-Version`,
    );
    const { state, messages } = await post(applicant, raw, 'forwarder@elsewhere.example');
    expect(state).toBe('discarded');
    expect(messages).toHaveLength(0);
  });

  it('limits posts per sender per hour, and tells the sender', async () => {
    const sender = 'Chatty <chatty@applicant.example>';
    const states: string[] = [];
    let last: RelayMessage[] = [];
    for (let index = 0; index < 4; index++) {
      const result = await post(sender, makeMessage({ from: sender, to: listAddress, subject: `post ${index}`, body: 'hello' }));
      states.push(result.state);
      last = result.messages;
    }
    expect(states).toEqual(['done', 'done', 'done', 'rejected']);
    const bounce = toOf(last, 'chatty@applicant.example');
    expect(bounce).toHaveLength(1);
    expect(bodyText(bounce[0].raw)).toContain('within an hour');
  });

  it('answers help and sendkey', async () => {
    const mark = world.relay.messages.length;
    const id = await world.send(subscriber, [`${publicList}-sendkey@${domain}`], makeMessage({ from: subscriber, to: `${publicList}-sendkey@${domain}`, subject: 'key please' }));
    await world.waitForState(id, ['done']);
    const messages = await world.settle(mark);
    expect(messages).toHaveLength(1);
    const text = messages[0].raw.toString();
    expect(text).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    expect(text.replace(/\s/g, '')).toContain(world.listKeys[publicList].fingerprint);
    expect(headerOf(messages[0].raw, 'Auto-Submitted')).toBe('auto-replied');
  });
});
