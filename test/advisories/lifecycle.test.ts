// Advisories end to end: revisions and the embargo date, control by CLI and by signed mail, the audit trail, late members.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runCliCaptured } from '../helpers/archive.ts';
import {
  advisoryRow,
  announceAddress,
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
import { announce, armoredPart, copiesOfPost, decryptCopy, headerOf, person, publicList, type ListWorld, type Person } from '../helpers/lists.ts';
import type { RelayMessage } from '../helpers/relay.ts';

let world: ListWorld;
const extraPeople: Person[] = [];

beforeAll(async () => {
  world = await startAdvisoryWorld();
});
afterAll(async () => {
  await world?.stop();
  await Promise.all(extraPeople.map((who) => who.gpg.cleanup()));
});

const cli = (...args: string[]) => runCliCaptured([...args, '--config', world.daemon.config.configDir]);
const seconds = (iso: string, delta: number) => new Date(Date.parse(iso) + delta * 1000);

/** The two parts of an RFC 3156 multipart/signed body: the signed bytes exactly, and the signature. */
function signedParts(raw: string): { signed: string; signature: string } {
  const boundary = /boundary="([^"]+)"/.exec(raw)?.[1];
  if (!boundary) throw new Error('no multipart/signed boundary');
  const start = raw.indexOf(`--${boundary}\r\n`) + boundary.length + 4;
  const end = raw.indexOf(`\r\n--${boundary}\r\n`, start);
  const signatureStart = raw.indexOf('-----BEGIN PGP SIGNATURE-----', end);
  const signatureEnd = raw.indexOf('-----END PGP SIGNATURE-----', signatureStart) + '-----END PGP SIGNATURE-----'.length;
  return { signed: raw.slice(start, end), signature: raw.slice(signatureStart, signatureEnd) };
}

/** A member's copy of the post spooled as `spoolId` (encrypted copies carry the server's Message-ID, made from it). */
async function waitForCopy(to: string, spoolId: string, from: number, timeoutMs = 30_000): Promise<RelayMessage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = copiesOfPost(world.relay.messages.slice(from), spoolId).find((message) => message.to.includes(to));
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no copy of post ${spoolId} reached ${to}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function editAnnounceList(change: (list: { members: Array<Record<string, unknown>> }) => void): void {
  const file = join(world.daemon.config.configDir, 'lists', `${announce}.yaml`);
  const list = parse(readFileSync(file, 'utf8')) as { members: Array<Record<string, unknown>> };
  change(list);
  writeFileSync(file, stringify(list));
}

describe('revisions and the embargo date', () => {
  it('v2 extends v1: nothing is published at v1 time, and v2 content is published at v2 time, once', async () => {
    const v1Date = hoursFromNow(24);
    const v2Date = hoursFromNow(48);
    await postAdvisory(world, { subject: 'XSA-1001 (EMBARGOED): grant table overflow', body: `Embargo-Until: ${v1Date}\n\nfirstdraftmarker: the first text.` });
    expect(advisoryRow(world, 'XSA-1001')).toMatchObject({ state: 'embargoed', embargo_until: Date.parse(v1Date), revision: 1 });
    await postAdvisory(world, { subject: 'XSA-1001 (EMBARGOED): grant table overflow', body: `Embargo-Until: ${v2Date}\n\nEmbargo extended. seconddraftmarker: the final text.` });
    expect(advisoryRow(world, 'XSA-1001')).toMatchObject({ state: 'embargoed', embargo_until: Date.parse(v2Date), revision: 2 });

    expect((await releaseAt(world, seconds(v1Date, 1))).filter((outcome) => outcome.status === 'released')).toEqual([]);
    expect(await publicSearch(world, 'firstdraftmarker')).not.toContain('XSA-1001');
    expect(await publicSearch(world, 'seconddraftmarker')).not.toContain('XSA-1001');

    const mark = world.relay.messages.length;
    const outcomes = await releaseAt(world, seconds(v2Date, 1));
    expect(outcomes).toMatchObject([{ status: 'released', advisoryId: 'XSA-1001', revision: 2, targetList: publicList }]);
    expect(await releaseAt(world, seconds(v2Date, 120))).toEqual([]);
    const published = outcomes[0]!.status === 'released' ? outcomes[0]!.messageId! : '';
    expect(await publicSearch(world, 'seconddraftmarker')).toContain(encodeURIComponent(published));
    expect(await publicSearch(world, 'firstdraftmarker')).not.toContain(encodeURIComponent(published));

    // The advisory's public URL follows its id.
    const base = `http://127.0.0.1:${world.daemon.httpPort}`;
    const page = await fetch(`${base}/lists/${publicList}/advisories/XSA-1001`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('seconddraftmarker');

    // Mailed to the public list: the team's signed content byte-exact, none of the private list's headers or notes.
    const mailed = messagesWithId(await world.settle(mark), published);
    expect(mailed.length).toBeGreaterThan(0);
    const raw = mailed[0]!.raw.toString();
    expect(headerOf(raw, 'Subject')).toBe('XSA-1001: grant table overflow');
    expect(headerOf(raw, 'To')).toBe(`${publicList}@lists.example.org`);
    expect(raw).not.toContain(announceAddress);
    expect(raw).not.toContain('Good signature by the registered key');
    expect(raw).not.toContain('firstdraftmarker');
    const { signed, signature } = signedParts(raw);
    expect(signed).toContain('seconddraftmarker');
    await world.vendorA.gpg.importKey(world.security.armored);
    const verified = await world.vendorA.gpg.verify(signed, signature);
    expect(verified.has('GOODSIG')).toBe(true);
    expect(verified.args('VALIDSIG')?.at(-1)).toBe(world.security.fingerprint);
  });
});

describe('control', () => {
  it('postpones, cancels and releases by CLI, and the posters are told each time', async () => {
    const date = hoursFromNow(24);
    await postAdvisory(world, { subject: 'XSA-1002: clikoala', body: `Embargo-Until: ${date}\n\nclikoalamarker` });
    const later = hoursFromNow(72);
    let mark = world.relay.messages.length;
    expect((await cli('advisory', 'postpone', 'XSA-1002', later)).code).toBe(0);
    expect(advisoryRow(world, 'XSA-1002')).toMatchObject({ state: 'embargoed', embargo_until: Date.parse(later) });
    expect((await readMail(world.security, await world.settle(mark), /embargo moved/)).join()).toContain(later);

    mark = world.relay.messages.length;
    expect((await cli('advisory', 'cancel', 'XSA-1002')).code).toBe(0);
    expect(advisoryRow(world, 'XSA-1002')).toMatchObject({ state: 'cancelled', embargo_until: null });
    expect(await readMail(world.security, await world.settle(mark), /release cancelled/)).toHaveLength(1);
    expect((await releaseAt(world, seconds(later, 3600))).filter((outcome) => outcome.advisoryId === 'XSA-1002')).toEqual([]);

    const released = await cli('advisory', 'release', 'XSA-1002', '--json');
    expect(released.code).toBe(0);
    expect(JSON.parse(released.stdout)).toMatchObject({ id: 'XSA-1002', state: 'released', revision: 1, title: 'XSA-1002: clikoala' });
    expect(await publicSearch(world, 'clikoalamarker')).toContain('xsa-1002.r1.');
    // A release cannot be undone.
    expect((await cli('advisory', 'cancel', 'XSA-1002')).code).toBe(1);

    const listing = JSON.parse((await cli('advisories', '--json')).stdout) as Array<{ id: string; state: string }>;
    expect(listing.find((entry) => entry.id === 'XSA-1002')).toMatchObject({ state: 'released' });
    const shown = JSON.parse((await cli('advisory', 'show', 'XSA-1002', '--json')).stdout) as { events: Array<{ event: string; actor: string }> };
    expect(shown.events.map((event) => event.event)).toEqual(['scheduled', 'postponed', 'cancelled', 'release-requested', 'released']);
  });

  it('postpones, cancels and releases by signed mail from a poster', async () => {
    const date = hoursFromNow(24);
    await postAdvisory(world, { subject: 'XSA-1003: mailwombat', body: `Embargo-Until: ${date}\n\nmailwombatmarker` });
    const later = hoursFromNow(96);
    let replies = await sendCommand(world, world.security.address, await buildCommand(world, world.security, `advisory postpone XSA-1003 ${later}`));
    expect((await readMail(world.security, replies, /Re: your request/)).join()).toContain('Done: XSA-1003: embargo moved');
    expect(advisoryRow(world, 'XSA-1003')).toMatchObject({ state: 'embargoed', embargo_until: Date.parse(later) });

    replies = await sendCommand(world, world.security.address, await buildCommand(world, world.security, 'advisory cancel XSA-1003'));
    expect((await readMail(world.security, replies, /Re: your request/)).join()).toContain('Done: XSA-1003: release cancelled');
    expect(advisoryRow(world, 'XSA-1003')).toMatchObject({ state: 'cancelled' });

    replies = await sendCommand(world, world.security.address, await buildCommand(world, world.security, 'advisory release XSA-1003'));
    expect((await readMail(world.security, replies, /Re: your request/)).join()).toContain('Done: XSA-1003: released now');
    await releaseAt(world, new Date());
    expect(advisoryRow(world, 'XSA-1003')).toMatchObject({ state: 'released', published_revision: 1 });
    expect(await publicSearch(world, 'mailwombatmarker')).toContain('xsa-1003.r1.');
  });
});

describe('audit trail and late members', () => {
  let advisory: { messageId: string; spoolId: string };

  beforeAll(async () => {
    advisory = await postAdvisory(world, { subject: 'XSA-1004: auditmoose', body: `Embargo-Until: ${hoursFromNow(24)}\n\nauditmoosemarker` });
  });

  it('lists every recipient with the key its copy was encrypted to, delivered after the relay accepted it', async () => {
    const audit = await cli('audit', 'XSA-1004', '--json');
    expect(audit.code).toBe(0);
    const entries = JSON.parse(audit.stdout) as Array<{ address: string; organisation: string; fingerprint: string | null; encryptedTo: string | null; revision: number; state: string; deliveredAt: string | null }>;
    const byAddress = new Map(entries.map((entry) => [entry.address, entry]));
    for (const member of [world.security, world.vendorA, world.vendorB]) {
      const entry = byAddress.get(member.address)!;
      expect(entry).toMatchObject({ organisation: member.name, fingerprint: member.fingerprint, revision: 1, state: 'delivered' });
      expect(entry.deliveredAt).not.toBeNull();
      // The key the copy was actually encrypted to: the key id in the copy's session-key packet.
      const copy = copiesOfPost(world.relay.messages, advisory.spoolId).find((message) => message.to.includes(member.address))!;
      const packets = await member.gpg.listPackets(armoredPart(copy.raw));
      const keyIds = [...packets.matchAll(/pubkey enc packet: version \d+, algo \d+, keyid ([0-9A-F]{16})/g)].map((match) => match[1]);
      expect(keyIds).toEqual([entry.encryptedTo!.slice(-16)]);
    }
    expect(byAddress.get(world.expired.address)).toMatchObject({ state: 'withheld', encryptedTo: null });
    expect(byAddress.get(world.expired.address)!.fingerprint).toBeNull();

    const csv = await cli('audit', 'XSA-1004', '--csv');
    expect(csv.stdout.split('\r\n')[0]).toBe('revision,address,organisation,fingerprint,encryptedTo,cause,state,queuedAt,deliveredAt,detail');
    expect(csv.stdout).toContain(world.vendorA.address);
  });

  it('sends the open advisory to a member added by a config edit, and to a withheld member once their key is fixed', async () => {
    const late = await person('security@vendor-d.example', 'Vendor D PSIRT');
    extraPeople.push(late);
    let mark = world.relay.messages.length;
    writeFileSync(join(world.daemon.config.configDir, 'keys', 'vendor-d.asc'), late.armored);
    editAnnounceList((list) => list.members.push({ email: late.address, organisation: late.name, key: '../keys/vendor-d.asc', roles: ['recipient'] }));
    const lateCopy = await waitForCopy(late.address, advisory.spoolId, mark);
    const decrypted = await decryptCopy(late, lateCopy);
    expect(decrypted.has('DECRYPTION_OKAY')).toBe(true);
    expect(decrypted.stdout.toString()).toContain('auditmoosemarker');

    // Vendor C's key had expired: a fresh key in the config makes them usable, and they get it then.
    const renewed = await person(world.expired.address, world.expired.name);
    extraPeople.push(renewed);
    mark = world.relay.messages.length;
    writeFileSync(join(world.daemon.config.configDir, 'keys', 'vendor-c.asc'), renewed.armored);
    const fixedCopy = await waitForCopy(world.expired.address, advisory.spoolId, mark);
    expect((await decryptCopy(renewed, fixedCopy)).stdout.toString()).toContain('auditmoosemarker');

    await world.settle();
    const entries = JSON.parse((await cli('audit', 'XSA-1004', '--json')).stdout) as Array<{ address: string; cause: string; state: string; fingerprint: string | null }>;
    expect(entries.filter((entry) => entry.address === late.address)).toMatchObject([{ cause: 'catch-up', state: 'delivered', fingerprint: late.fingerprint }]);
    expect(entries.filter((entry) => entry.address === world.expired.address).map((entry) => entry.state)).toEqual(['withheld', 'delivered']);

    // An admin's resend is one more recorded copy.
    mark = world.relay.messages.length;
    expect((await cli('resend', 'XSA-1004', '--to', world.vendorA.address)).code).toBe(0);
    await waitForCopy(world.vendorA.address, advisory.spoolId, mark);
    await world.settle();
    const after = JSON.parse((await cli('audit', 'XSA-1004', '--json')).stdout) as Array<{ address: string; cause: string; state: string }>;
    expect(after.filter((entry) => entry.address === world.vendorA.address).map((entry) => entry.cause)).toEqual(['post', 'resend']);
  });
});
