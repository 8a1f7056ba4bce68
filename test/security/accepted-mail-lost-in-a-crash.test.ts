// Invariant 5 through fan-out and delivery: 200 posts to 20 members, kill -9 the daemon several times mid-way; all 4,000 copies arrive.
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ensureListKey } from '../../src/crypto/index.ts';
import { makeTestConfig, startTestDaemon, type TestConfig, type TestDaemon } from '../helpers/daemon.ts';
import { createGpgHome, type GpgHome } from '../helpers/gpg.ts';
import { startRelayPeer, type RelayPeer } from '../helpers/relay.ts';
import { sendMail } from '../helpers/smtp.ts';

const domain = 'lists.example.org';
const listName = 'advisories';
const posts = 200;
const memberCount = 20;
const kills = 4;
const concurrency = 8;

let gpg: GpgHome | null = null;
let relay: RelayPeer | null = null;
let config: TestConfig | null = null;
let daemon: TestDaemon | null = null;

afterAll(async () => {
  await daemon?.stop().catch(() => undefined);
  await relay?.close();
  await gpg?.cleanup();
  config?.cleanup();
});

function messageIdOf(raw: Buffer): string | null {
  const head = raw.subarray(0, Math.max(0, raw.indexOf('\r\n\r\n'))).toString('latin1').replace(/\r\n[ \t]+/g, ' ');
  return /^Message-ID:\s*(<[^>]+>)/im.exec(head)?.[1] ?? null;
}

/** Spool id (lower case) → the poster's Message-ID, read from the spool as the daemon stored each post. */
const postOfSpoolRow = new Map<string, string>();

/**
 * The poster's Message-ID of the post an encrypted copy belongs to. On the wire a copy carries only the server's
 * Message-ID, <SPOOLID.LIST@DOMAIN>, stable for a spool row across crashes; the spool row names the post.
 */
function postOfCopy(wireId: string | null): string | null {
  const spoolId = wireId ? new RegExp(`^<([^.<>]+)\\.${listName}@${domain.replace(/\./g, '\\.')}>$`).exec(wireId)?.[1] : undefined;
  if (!spoolId) return null;
  if (!postOfSpoolRow.has(spoolId)) {
    const db = new Database(config!.dbFile, { readonly: true });
    try {
      for (const row of db.prepare('SELECT id, raw FROM spool').all() as Array<{ id: string; raw: Buffer }>) {
        const posted = messageIdOf(row.raw);
        if (posted) postOfSpoolRow.set(row.id.toLowerCase(), posted);
      }
    } finally {
      db.close();
    }
  }
  return postOfSpoolRow.get(spoolId) ?? null;
}

/** Distinct (recipient, post) pairs the relay has, and how many messages it got in all. */
function tally(peer: RelayPeer): { distinct: number; total: number; other: number; copies: Map<string, number> } {
  const copies = new Map<string, number>();
  let other = 0;
  for (const message of peer.messages) {
    const messageId = postOfCopy(messageIdOf(message.raw));
    // Only copies of the posts count; notices (e.g. a replay refusal after a lost 250) are reported apart.
    if (!messageId?.startsWith('<crash-')) {
      other += 1;
      continue;
    }
    const key = `${message.to.join(',').toLowerCase()} ${messageId}`;
    copies.set(key, (copies.get(key) ?? 0) + 1);
  }
  return { distinct: copies.size, total: peer.messages.length - other, other, copies };
}

/** For a failure report: each post with copies missing, which recipients miss it, and its spool rows and outbound rows. */
function whereAreTheMissing(copies: Map<string, number>, recipients: string[]): string {
  const db = new Database(config!.dbFile, { readonly: true });
  try {
    const spoolRows = db.prepare('SELECT id, state, attempts, outcome, reason, raw FROM spool').all() as Array<{ id: string; state: string; attempts: number; outcome: string | null; reason: string | null; raw: Buffer }>;
    const lines: string[] = [];
    for (let index = 0; index < posts; index++) {
      const messageId = `<crash-${index}@xen.example>`;
      const missing = recipients.filter((recipient) => !copies.has(`${recipient} ${messageId}`));
      if (missing.length === 0) continue;
      lines.push(`${messageId}: ${missing.length} of ${recipients.length} copies missing (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''})`);
      for (const row of spoolRows.filter((candidate) => messageIdOf(candidate.raw) === messageId)) {
        const outbound = db.prepare('SELECT state, count(*) AS n FROM outbound WHERE spool_id = ? GROUP BY state').all(row.id) as Array<{ state: string; n: number }>;
        lines.push(`  spool ${row.id}: ${row.state} after ${row.attempts} attempts (${row.outcome ?? '-'}: ${row.reason ?? '-'}); outbound ${outbound.map((entry) => `${entry.state} ${entry.n}`).join(', ') || 'none'}`);
      }
    }
    return lines.join('\n');
  } finally {
    db.close();
  }
}

describe('crash safety of fan-out and delivery', () => {
  it(`delivers every one of ${posts * memberCount} copies at least once across ${kills} kill -9s, and counts the duplicates`, async () => {
    gpg = await createGpgHome();
    const people = [];
    for (let index = 0; index < memberCount; index++) {
      const address = index === 0 ? 'security@xen.example' : `security@vendor-${index}.example`;
      const key = await gpg.generateKey({ address, name: index === 0 ? 'Xen Security Team' : `Vendor ${index}` });
      people.push({ address, fingerprint: key.fingerprint, armored: await gpg.exportPublic(key.fingerprint) });
    }
    const poster = people[0];
    relay = await startRelayPeer();
    config = makeTestConfig({
      relay: { host: relay.host, port: relay.port },
      removeLists: ['xen-security-issues', 'xen-security-issues-discuss', 'predisclosure-applications'],
      server: { admins: ['postmaster@lists.example.org'], relay: { retrySchedule: [1], concurrency } },
      lists: {
        [listName]: stringify({
          description: 'Embargoed advisories (crash test)',
          kind: 'announce',
          archive: 'none',
          members: people.map((person, index) => ({
            email: person.address,
            key: `../keys/member-${index}.asc`,
            roles: index === 0 ? ['poster', 'recipient', 'admin'] : ['recipient'],
          })),
        }),
      },
      files: Object.fromEntries(people.map((person, index) => [`keys/member-${index}.asc`, person.armored])),
    });
    const listKey = await ensureListKey({ dataDir: config.dataDir, listName, domain });
    await gpg.importKey(listKey.armoredPublicKey);

    // The posts, signed by the security team and encrypted to the list key, as a PGP/MIME client sends them.
    // One at a time: parallel gpg processes on one keyring wait on each other's locks and are much slower.
    const raws: string[] = [];
    for (let index = 0; index < posts; index++) {
      const entity = `Content-Type: text/plain; charset=utf-8\r\n\r\nAdvisory ${index}: details under embargo.\r\n`;
      const ciphertext = await gpg.encrypt(entity, { recipients: [listKey.fingerprint], signer: poster.fingerprint });
      const boundary = `enc-${index}`;
      raws.push(
        `From: Xen Security Team <${poster.address}>\r\nTo: ${listName}@${domain}\r\nSubject: XSA-${index}\r\n` +
          `Date: ${new Date().toUTCString()}\r\nMessage-ID: <crash-${index}@xen.example>\r\nMIME-Version: 1.0\r\n` +
          `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
          `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
          `--${boundary}\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n` +
          `${ciphertext.toString('utf8').replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`,
      );
    }

    daemon = await startTestDaemon({ mode: 'child', config });
    const started = Date.now();
    let acceptedAt = 0;
    let refusedAttempts = 0;

    // Four clients submit the posts; when the daemon is down they retry until it is back (as any MTA would).
    // A post whose 250 was lost in a kill is sent again and the list's replay check drops the second one.
    let next = 0;
    const submitter = async () => {
      while (next < posts) {
        const index = next++;
        for (;;) {
          const port = daemon!.smtpPort;
          const result = await sendMail({ port, from: poster.address, to: [`${listName}@${domain}`], raw: raws[index] }).catch(() => null);
          if (result?.ok) break;
          refusedAttempts += 1;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    };
    const submitting = Promise.all([submitter(), submitter(), submitter(), submitter()]).then(() => {
      acceptedAt = Date.now() - started;
    });

    // Kill at random moments while posts arrive, are fanned out and their copies delivered; restart each time.
    // The moments are drawn in terms of progress (copies at the relay), so a fast machine cannot finish first.
    const progress: string[] = [];
    const total = posts * memberCount;
    for (let kill = 1; kill <= kills; kill++) {
      const low = ((kill - 1) / kills) * 0.85 * total;
      const target = Math.floor(low + Math.random() * (0.85 * total) / kills);
      const waitStarted = Date.now();
      while (relay.messages.length < target && Date.now() - waitStarted < 30_000) {
        await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
      }
      const before = tally(relay);
      await daemon.kill('SIGKILL');
      progress.push(
        `kill ${kill} at ${before.distinct}/${total} distinct copies at the relay (aimed at ${target}), ${Math.min(next, posts)} posts handed over`,
      );
      // A kill after everything was delivered would prove nothing.
      expect(before.distinct, progress.join('\n')).toBeLessThan(total);
      daemon = await startTestDaemon({ mode: 'child', config });
    }
    await submitting;

    const deadline = Date.now() + 180_000;
    while (tally(relay).distinct < posts * memberCount && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // Anything still on its way would show up as a duplicate a moment later; give it that moment.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const final = tally(relay);
    const duplicates = final.total - final.distinct;
    const duplicated = [...final.copies.values()].filter((count) => count > 1).length;
    const summary = [
      `all ${posts} posts accepted over SMTP ${acceptedAt} ms after the first start (${refusedAttempts} attempts hit a dead daemon and were retried)`,
      ...progress,
      `relay received ${final.total} copies of posts: ${final.distinct} distinct (recipient, Message-ID), ${duplicates} duplicate deliveries of ${duplicated} copies; ${final.other} other messages (notices)`,
      `total time ${((Date.now() - started) / 1000).toFixed(1)} s`,
    ].join('\n');
    console.log(`delivery crash test:\n${summary}`);
    if (process.env.FORCE_DIAG || final.distinct < posts * memberCount) console.log(`missing copies, and what the database says of their posts:\n${whereAreTheMissing(final.copies, people.map((person) => person.address))}`);

    // Every post reached every member.
    for (let index = 0; index < posts; index++) {
      for (const person of people) {
        const key = `${person.address} <crash-${index}@xen.example>`;
        expect(final.copies.get(key) ?? 0, `${key}\n${summary}`).toBeGreaterThanOrEqual(1);
      }
    }
    expect(final.distinct, summary).toBe(posts * memberCount);
    // Duplicates come only from rows in flight at a kill: at most `concurrency` per kill.
    expect(duplicates, summary).toBeLessThanOrEqual(kills * concurrency);
  }, 400_000);
});
