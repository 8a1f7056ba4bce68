// Scheduled jobs driven by the test's clock: key-expiry reminders (decrypted with real GnuPG), held-post digests, cleanup.
import pino from 'pino';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureListKey } from '../../src/crypto/index.ts';
import { loadListKey } from '../../src/data-dir.ts';
import { runCleanup } from '../../src/ops/cleanup.ts';
import { runHeldDigest } from '../../src/ops/held-digest.ts';
import type { JobServices } from '../../src/ops/jobs.ts';
import { runKeyExpiryWarnings } from '../../src/ops/key-expiry.ts';
import { createGpgHome, type GpgHome } from '../helpers/gpg.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { startRelayPeer, type RelayMessage, type RelayPeer } from '../helpers/relay.ts';

const domain = 'lists.example.org';
const admin = 'postmaster@lists.example.org';
const dayMs = 86_400_000;

interface Member {
  address: string;
  gpg: GpgHome;
  fingerprint: string;
  armored: string;
}

async function member(address: string, expire: string): Promise<Member> {
  const gpg = await createGpgHome();
  const key = await gpg.generateKey({ address, expire });
  return { address, gpg, fingerprint: key.fingerprint, armored: await gpg.exportPublic(key.fingerprint) };
}

function armoredMessage(raw: Buffer): string {
  const match = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(raw.toString('utf8'));
  if (!match) throw new Error(`not an encrypted copy:\n${raw.toString('utf8').slice(0, 500)}`);
  return match[0];
}

describe('scheduled jobs (driven clock)', () => {
  let daemon: TestDaemon;
  let relay: RelayPeer;
  let soon: Member; // expires in 3 days
  let later: Member; // expires in 10 days
  let steady: Member; // never expires
  let moderator: Member;
  let services: JobServices;
  const listFingerprints: Record<string, string> = {};

  beforeAll(async () => {
    [soon, later, steady, moderator] = await Promise.all([
      member('security@soon.example', '3d'),
      member('security@later.example', '10d'),
      member('security@steady.example', 'never'),
      member('moderator@xen.example', 'never'),
    ]);
    relay = await startRelayPeer();
    const entry = (who: Member, file: string, roles: string[]) => ({ email: who.address, organisation: `Org of ${who.address}`, key: `../keys/${file}`, roles });
    daemon = await startTestDaemon({
      relay: { host: relay.host, port: relay.port },
      removeLists: ['xen-security-issues', 'xen-security-issues-discuss', 'predisclosure-applications'],
      // Schedules that fire once a year (31 December 23:59:59): the test calls the jobs itself.
      server: {
        admins: [admin],
        relay: { retrySchedule: [1] },
        schedules: { keyExpiryWarning: '59 59 23 31 12 *', heldDigest: '59 59 23 31 12 *', cleanup: '59 59 23 31 12 *', spoolRetentionDays: 30, deadLetterRetentionDays: 90 },
      },
      lists: {
        advisories: stringify({
          kind: 'announce',
          archive: 'private',
          members: [entry(soon, 'soon.asc', ['recipient']), entry(later, 'later.asc', ['recipient']), entry(steady, 'steady.asc', ['recipient', 'poster'])],
        }),
        // `soon` is on two lists with the same key: still one reminder per run.
        sharing: stringify({
          kind: 'discussion',
          archive: 'private',
          moderated: true,
          members: [entry(soon, 'soon.asc', ['recipient']), entry(moderator, 'moderator.asc', ['recipient', 'moderator'])],
        }),
        applications: stringify({ kind: 'public', archive: 'public', members: [entry(moderator, 'moderator.asc', ['recipient', 'moderator'])] }),
      },
      files: { 'keys/soon.asc': soon.armored, 'keys/later.asc': later.armored, 'keys/steady.asc': steady.armored, 'keys/moderator.asc': moderator.armored },
    });
    const running = daemon.daemon!;
    services = { config: running.config, db: running.db, logger: pino({ level: 'silent' }), listKey: (name) => loadListKey(running.config(), name) };
    for (const name of ['advisories', 'sharing', 'applications']) {
      const key = await ensureListKey({ dataDir: daemon.config.dataDir, listName: name, domain });
      listFingerprints[name] = key.fingerprint;
      for (const who of [soon, later, moderator]) await who.gpg.importKey(key.armoredPublicKey);
    }
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    await relay?.close();
    await Promise.all([soon, later, steady, moderator].filter(Boolean).map((who) => who.gpg.cleanup()));
  });

  /** Waits until `count` more messages than `mark` reached the relay, then a little longer to catch any extra. */
  async function received(mark: number, count: number): Promise<RelayMessage[]> {
    await relay.waitForMessages(mark + count);
    await new Promise((resolve) => setTimeout(resolve, 300));
    return relay.messages.slice(mark);
  }

  it('a key expiring in 3 days gets exactly one signed, encrypted reminder per weekly run; admins get one summary', async () => {
    const t0 = new Date();
    const first = await runKeyExpiryWarnings(services, t0);
    expect(first.reminded.map((entry) => entry.address).sort()).toEqual([later.address, soon.address]);
    expect(first.reminded.find((entry) => entry.address === soon.address)?.lists.sort()).toEqual(['advisories', 'sharing']);
    expect(first.summaries).toBe(1);

    const mail = await received(0, 3);
    expect(mail).toHaveLength(3);
    const toSoon = mail.filter((message) => message.to.includes(soon.address));
    expect(toSoon).toHaveLength(1);
    expect(mail.filter((message) => message.to.includes(steady.address))).toHaveLength(0);
    expect(mail.filter((message) => message.to.includes(admin))).toHaveLength(1);

    // Encrypted to that member: their own GnuPG decrypts it and finds the list's valid signature inside.
    const raw = toSoon[0].raw.toString('utf8');
    expect(raw).toMatch(/Content-Type: multipart\/encrypted/i);
    expect(raw).not.toContain(soon.fingerprint);
    const opened = await soon.gpg.decrypt(armoredMessage(toSoon[0].raw));
    expect(opened.code).toBe(0);
    expect(opened.has('DECRYPTION_OKAY')).toBe(true);
    expect(opened.args('VALIDSIG')?.[0]).toBe(listFingerprints.advisories);
    const text = opened.stdout.toString('utf8');
    expect(text).toContain(soon.fingerprint);
    expect(text).toContain('Your OpenPGP key expires on');
    // Nobody else can read it.
    expect((await later.gpg.decrypt(armoredMessage(toSoon[0].raw))).has('DECRYPTION_OKAY')).toBe(false);

    // The same week: nothing again.
    const second = await runKeyExpiryWarnings(services, new Date(t0.getTime() + 3_600_000));
    expect(second.reminded).toEqual([]);
    expect(second.alreadyReminded).toHaveLength(2);
    expect(second.summaries).toBe(0);

    // A week later: the 10-day key (now 3 days from expiry) gets its one reminder again; the 3-day key has expired.
    const third = await runKeyExpiryWarnings(services, new Date(t0.getTime() + 7 * dayMs + 3_600_000));
    expect(third.reminded.map((entry) => entry.address)).toEqual([later.address]);
    expect(third.expired.map((entry) => entry.address)).toEqual([soon.address]);
    const next = await received(3, 2);
    expect(next).toHaveLength(2);
    expect(next.filter((message) => message.to.includes(later.address))).toHaveLength(1);
    const summary = next.find((message) => message.to.includes(admin))!;
    // The admin has no key: the summary is signed, in clear, and lists the expired key too.
    expect(summary.raw.toString('utf8')).toContain(soon.address);
    expect(summary.raw.toString('utf8')).toMatch(/EXPIRED/);
  }, 60_000);

  it('held digest: one per list to its moderators, encrypted; senders only for public lists', async () => {
    const { db } = services;
    const now = Date.now();
    const hold = (id: string, list: string, sender: string, ageMs: number) => {
      db.prepare(
        `INSERT INTO spool (id, received_at, mail_from, rcpt_to, size, raw, state, list, updated_at) VALUES (?, ?, ?, '[]', 3, x'414243', 'held', ?, ?)`,
      ).run(id, now - ageMs, sender, list, now);
      db.prepare(`INSERT INTO moderation (spool_id, list, held_at, reason, sender) VALUES (?, ?, ?, 'the list is moderated', ?)`).run(id, list, now - ageMs, sender);
    };
    hold('HELDPRIVATE0001', 'sharing', 'secret-poster@vendor.example', 5 * 3_600_000);
    hold('HELDPUBLIC00001', 'applications', 'applicant@example.net', 2 * dayMs);
    const mark = relay.messages.length;
    const result = await runHeldDigest(services, new Date(now));
    expect([...result.lists].sort((a, b) => a.list.localeCompare(b.list))).toEqual([
      { list: 'applications', held: 1, moderators: 1 },
      { list: 'sharing', held: 1, moderators: 1 },
    ]);
    const mail = await received(mark, 2);
    expect(mail).toHaveLength(2);
    const texts: string[] = [];
    for (const message of mail) {
      expect(message.to).toEqual([moderator.address]);
      expect(message.raw.toString('utf8')).not.toContain('HELD');
      const opened = await moderator.gpg.decrypt(armoredMessage(message.raw));
      expect(opened.has('DECRYPTION_OKAY')).toBe(true);
      texts.push(opened.stdout.toString('utf8'));
    }
    const privateDigest = texts.find((text) => text.includes('HELDPRIVATE0001'))!;
    const publicDigest = texts.find((text) => text.includes('HELDPUBLIC00001'))!;
    expect(privateDigest).toContain('5 hours ago');
    expect(privateDigest).not.toContain('secret-poster@vendor.example');
    expect(publicDigest).toContain('applicant@example.net');
    expect(publicDigest).toContain('2 days ago');
  }, 30_000);

  it('cleanup: old finished spool rows and old dead letters go; held, shunted and waiting rows stay', () => {
    const { db } = services;
    const now = Date.now();
    const old = now - 31 * dayMs;
    const spoolRow = (id: string, state: string, receivedAt: number) =>
      db.prepare(`INSERT INTO spool (id, received_at, mail_from, rcpt_to, size, raw, state, updated_at) VALUES (?, ?, '', '[]', 1, x'41', ?, ?)`).run(id, receivedAt, state, receivedAt);
    for (const state of ['done', 'rejected', 'discarded', 'held', 'shunted']) spoolRow(`OLD${state.toUpperCase().padEnd(12, 'X')}`, state, old);
    spoolRow('RECENTDONEXXXXX', 'done', now - dayMs);
    const outboundRow = (state: string, updatedAt: number) =>
      Number(
        db
          .prepare(`INSERT INTO outbound (list, recipient, head, state, next_attempt_at, created_at, updated_at) VALUES ('advisories', 'x@example.net', x'41', ?, ?, ?, ?)`)
          .run(state, updatedAt, updatedAt, updatedAt).lastInsertRowid,
      );
    const veryOld = now - 91 * dayMs;
    const gone = ['sent', 'failed', 'expired', 'suspended'].map((state) => outboundRow(state, veryOld));
    const kept = [outboundRow('deferred', veryOld), outboundRow('failed', now - 10 * dayMs)];

    const result = runCleanup(services, new Date(now));
    expect(result.spoolRows).toBe(3);
    const states = (db.prepare(`SELECT id, state FROM spool WHERE id LIKE 'OLD%' OR id LIKE 'RECENT%' ORDER BY id`).all() as Array<{ state: string }>).map((row) => row.state);
    expect(states.sort()).toEqual(['done', 'held', 'shunted']);
    expect(result.outboundRows).toBe(4);
    const left = (db.prepare('SELECT id FROM outbound').all() as Array<{ id: number }>).map((row) => row.id);
    for (const id of gone) expect(left).not.toContain(id);
    for (const id of kept) expect(left).toContain(id);
    // Idempotent: a second run finds nothing more.
    expect(runCleanup(services, new Date(now))).toMatchObject({ spoolRows: 0, outboundRows: 0 });
  });
});
