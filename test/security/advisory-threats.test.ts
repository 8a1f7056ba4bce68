// Invariants 7 and 8: an embargo is decided by signed content and the team's signed commands only; nothing from outside moves it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  advisoryRow,
  buildCommand,
  hoursFromNow,
  messagesWithId,
  postAdvisory,
  publicSearch,
  readMail,
  releaseAt,
  sendCommand,
  startAdvisoryWorld,
} from '../helpers/advisories.ts';
import { domain, newMessageId, publicList, type ListWorld } from '../helpers/lists.ts';

let world: ListWorld;

beforeAll(async () => {
  // Unanchored, as an admin may well write it: a quoted line of an earlier mail matches too.
  world = await startAdvisoryWorld({ announce: { embargoPattern: 'Embargo-Until: (\\S+)' } });
});
afterAll(async () => {
  await world?.stop();
});

const future = (hours: number) => new Date(Date.now() + hours * 3_600_000);

describe('advisory threats', () => {
  it('an outer X-Embargo-Until in the past is ignored: nothing is scheduled, published or mailed', async () => {
    const mark = world.relay.messages.length;
    await postAdvisory(world, {
      subject: 'XSA-2001: outerheaderowl',
      body: 'outerheaderowlmarker: no date in the signed text.',
      headers: { 'X-Embargo-Until': '2020-01-01T00:00:00Z' },
    });
    expect(advisoryRow(world, 'XSA-2001')).toMatchObject({ state: 'no-date', embargo_until: null });
    expect((await releaseAt(world, new Date())).filter((outcome) => outcome.advisoryId === 'XSA-2001')).toEqual([]);
    expect(await publicSearch(world, 'outerheaderowlmarker')).not.toContain('XSA-2001');
    const toPublic = (await world.settle(mark)).filter((message) => message.raw.toString().includes('outerheaderowlmarker'));
    expect(toPublic).toEqual([]);
  });

  it('a public post squatting the advisory Message-ID neither suppresses nor replaces the release, which happens once', async () => {
    const date = hoursFromNow(24);
    const advisory = await postAdvisory(world, { subject: 'XSA-2002: squatbadger', body: `Embargo-Until: ${date}\n\nrealbadgermarker: the real text.` });
    // The poster's Message-ID crossed the wire in clear; an outsider posts to the public list under it first.
    const squat =
      `From: someone@outside.example\r\nTo: ${publicList}@${domain}\r\nSubject: XSA-2002: squatbadger\r\nDate: ${new Date().toUTCString()}\r\n` +
      `Message-ID: <${advisory.messageId}>\r\n\r\nfakebadgermarker: nothing to see.\r\n`;
    const squatId = await world.send('someone@outside.example', [`${publicList}@${domain}`], squat);
    expect(await world.waitForState(squatId, ['done', 'rejected', 'discarded', 'held', 'shunted'])).toBe('done');
    await world.settle();

    const mark = world.relay.messages.length;
    const at = new Date(Date.parse(date) + 1000);
    const [first, second] = await Promise.all([releaseAt(world, at), releaseAt(world, at)]);
    const released = [...first, ...second].filter((outcome) => outcome.status === 'released' && outcome.advisoryId === 'XSA-2002');
    expect(released).toHaveLength(1);
    const publishedId = released[0]!.status === 'released' ? released[0]!.messageId! : '';
    expect(publishedId).not.toBe(advisory.messageId);

    const base = `http://127.0.0.1:${world.daemon.httpPort}`;
    const page = await (await fetch(`${base}/lists/${publicList}/advisories/XSA-2002`)).text();
    expect(page).toContain('realbadgermarker');
    expect(page).not.toContain('fakebadgermarker');
    expect(await publicSearch(world, 'realbadgermarker')).toContain(encodeURIComponent(publishedId));
    // The release mail went out (it is not mistaken for a duplicate of the squatter's post).
    const mailed = messagesWithId(await world.settle(mark), publishedId);
    expect(mailed.length).toBeGreaterThan(0);
    expect(mailed[0]!.raw.toString()).toContain('realbadgermarker');
  });

  it('a quoted second date in the signed text gives "not scheduled", and the team is told why', async () => {
    const mark = world.relay.messages.length;
    const date = hoursFromNow(30);
    await postAdvisory(world, {
      subject: 'XSA-2003: quotedlynx',
      body: `Embargo-Until: ${date}\n\nquotedlynxmarker\n\nOn Monday the team wrote:\n> Embargo-Until: 2026-01-02T12:00:00Z\n`,
    });
    expect(advisoryRow(world, 'XSA-2003')).toMatchObject({ state: 'no-date', embargo_until: null });
    const notices = await readMail(world.security, await world.settle(mark), /NOT scheduled/);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain('2 different embargo dates');
    expect((await releaseAt(world, future(24 * 365))).filter((outcome) => outcome.advisoryId === 'XSA-2003')).toEqual([]);
  });

  it('refuses an unsigned advisory release, and one signed by a member who is not a poster, in the same words', async () => {
    await postAdvisory(world, { subject: 'XSA-2004: unsignedgecko', body: `Embargo-Until: ${hoursFromNow(24)}\n\nunsignedgeckomarker` });
    const unsigned = await sendCommand(world, world.security.address, await buildCommand(world, world.security, 'advisory release XSA-2004', { signed: false, encrypted: false }));
    const byMember = await sendCommand(world, world.vendorA.address, await buildCommand(world, world.vendorA, 'advisory release XSA-2004'));
    const byOutsider = await sendCommand(world, world.outsider.address, await buildCommand(world, world.outsider, 'advisory release XSA-2004'));
    expect(advisoryRow(world, 'XSA-2004')).toMatchObject({ state: 'embargoed' });
    const refusal = /Advisory commands need a request whose body is signed with the registered key of one of the list's posters/;
    expect((await readMail(world.security, unsigned, /Re: your request/)).join()).toMatch(refusal);
    expect((await readMail(world.vendorA, byMember, /Re: your request/)).join()).toMatch(refusal);
    expect((await readMail(world.outsider, byOutsider, /Re: your request/)).join()).toMatch(refusal);
    expect((await releaseAt(world, new Date())).filter((outcome) => outcome.advisoryId === 'XSA-2004')).toEqual([]);
  });

  it('refuses a replayed signed command, even re-wrapped with new outer headers', async () => {
    await postAdvisory(world, { subject: 'XSA-2005: replayferret', body: `Embargo-Until: ${hoursFromNow(24)}\n\nreplayferretmarker` });
    const cancel = await buildCommand(world, world.security, 'advisory cancel XSA-2005');
    await sendCommand(world, world.security.address, cancel);
    expect(advisoryRow(world, 'XSA-2005')).toMatchObject({ state: 'cancelled' });
    // The team schedules it again with a new revision; an attacker replays the captured cancel.
    const date = hoursFromNow(48);
    await postAdvisory(world, { subject: 'XSA-2005: replayferret', body: `Embargo-Until: ${date}\n\nreplayferretmarker v2` });
    expect(advisoryRow(world, 'XSA-2005')).toMatchObject({ state: 'embargoed', embargo_until: Date.parse(date) });
    const replayed = cancel.replace(/^Message-ID: <[^>]+>/m, `Message-ID: <${newMessageId()}>`).replace(/^Date: .*$/m, `Date: ${new Date().toUTCString()}`);
    const replies = await sendCommand(world, world.security.address, replayed);
    expect((await readMail(world.security, replies, /Re: your request/)).join()).toContain('carried out before');
    expect(advisoryRow(world, 'XSA-2005')).toMatchObject({ state: 'embargoed', embargo_until: Date.parse(date) });
  });
});
