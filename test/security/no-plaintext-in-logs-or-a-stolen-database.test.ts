// Invariants 1 and 6 (threats: a stolen database, and logs shipped to a log service): neither holds the embargoed text, private subjects or key material.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { announce, discussion, domain, newMessageId, startListWorld } from '../helpers/lists.ts';
import type { ListWorld, Person } from '../helpers/lists.ts';

let world: ListWorld;
const inner = (tag: string) => ({ subject: `INNER-SUBJECT-${tag}-5d1c`, body: `EMBARGOED-BODY-${tag}-9e27 the vulnerability is in the frobnicator` });
const outerSubject = (tag: string) => `OUTER-SUBJECT-${tag}-c0a3`;
const tags = ['accepted', 'held', 'refused', 'owner'];

/** A post as a PGP/MIME client with protected headers sends it: the real Subject inside the ciphertext. */
async function post(from: Person, to: string, encryptTo: string, tag: string, signer: Person | null = from): Promise<string> {
  const { subject, body } = inner(tag);
  const entity = `Subject: ${subject}\r\nContent-Type: text/plain; charset=utf-8; protected-headers="v1"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}\r\n`;
  const ciphertext = await from.gpg.encrypt(entity, { recipients: [world.listKeys[encryptTo].fingerprint], ...(signer ? { signer: signer.fingerprint } : {}) });
  const boundary = `enc-${tag}`;
  return (
    `From: ${from.name} <${from.address}>\r\nTo: ${to}\r\nSubject: ${outerSubject(tag)}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${newMessageId()}>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
    `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
    `--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n${ciphertext.toString('utf8').replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`
  );
}

beforeAll(async () => {
  // Everything the daemon can log, including the pipeline's per-stage debug lines and intake's.
  process.env.EMBARGO_TEST_LOG_LEVEL = 'trace';
  world = await startListWorld({ discussion: { moderated: true } });
  const sends: Array<[Person, string, string, string, Person | null]> = [
    [world.security, `${announce}@${domain}`, announce, 'accepted', world.security],
    [world.vendorA, `${discussion}@${domain}`, discussion, 'held', world.vendorA],
    [world.vendorA, `${announce}@${domain}`, announce, 'refused', world.vendorA],
    [world.vendorB, `${announce}-owner@${domain}`, announce, 'owner', world.vendorB],
  ];
  const states: Record<string, string> = {};
  for (const [from, to, list, tag, signer] of sends) {
    const id = await world.send(from.address, [to], await post(from, to, list, tag, signer));
    states[tag] = await world.waitForState(id, ['done', 'held', 'rejected', 'discarded', 'shunted']);
  }
  expect(states).toEqual({ accepted: 'done', held: 'held', refused: 'rejected', owner: 'done' });
  await world.settle();
});

afterAll(async () => {
  await world?.stop();
  delete process.env.EMBARGO_TEST_LOG_LEVEL;
});

/** The text plus whatever base64 runs in it decode to (notices carry attachments base64-encoded). */
function readable(bytes: Buffer): string {
  const text = bytes.toString('latin1');
  const decoded = (text.match(/(?:[A-Za-z0-9+/=]{16,}\r?\n?){2,}/g) ?? []).map((run) => Buffer.from(run.replace(/\s+/g, ''), 'base64').toString('latin1'));
  return [text, ...decoded].join('\n');
}

it('logs carry no bodies, no private subjects (inner or outer) and no key material, at trace level', () => {
  const lines = world.daemon.logs();
  expect(lines.length).toBeGreaterThan(20);
  expect(lines.some((line) => line.level === 20 && line.msg === 'pipeline stages')).toBe(true);
  const text = lines.map((line) => JSON.stringify(line)).join('\n');
  for (const tag of tags) {
    expect(text).not.toContain(inner(tag).subject);
    expect(text).not.toContain(inner(tag).body.slice(0, 20));
    expect(text).not.toContain(outerSubject(tag));
  }
  expect(text).not.toMatch(/BEGIN PGP|PRIVATE KEY/);
  // No line of any key's armor (member keys and list keys alike).
  const keyLines = [world.security, world.vendorA, world.vendorB]
    .map((who) => who.armored)
    .concat(Object.values(world.listKeys).map((key) => key.armored))
    .flatMap((armored) => armored.split(/\r?\n/).filter((line) => /^[A-Za-z0-9+/]{40,}$/.test(line)));
  expect(keyLines.length).toBeGreaterThan(10);
  for (const line of keyLines) expect(text).not.toContain(line);
});

it('a stolen data directory (database, WAL, keys) holds no embargoed text: the spool keeps ciphertext, the queue ciphertext, the archive encrypted', () => {
  const dataDir = world.daemon.config.dataDir;
  // Every column of every row, read through SQLite, base64 runs decoded.
  const db = new Database(join(dataDir, 'embargo.sqlite'), { readonly: true });
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')").all() as Array<{ name: string }>).map((row) => row.name);
  let cells = 0;
  const found: string[] = [];
  const outerSeenIn = new Set<string>();
  for (const table of tables) {
    for (const row of db.prepare(`SELECT * FROM "${table}"`).all() as Array<Record<string, unknown>>) {
      for (const [column, value] of Object.entries(row)) {
        if (value === null || typeof value === 'number' || typeof value === 'bigint') continue;
        cells++;
        const text = readable(Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8'));
        for (const tag of tags) {
          if (text.includes(inner(tag).subject) || text.includes(inner(tag).body.slice(0, 20))) found.push(`${table}.${column} (${tag})`);
          if (text.includes(outerSubject(tag))) outerSeenIn.add(`${table}.${column}`);
        }
      }
    }
  }
  db.close();
  for (const prefix of ['spool', 'outbound', 'archive']) expect(tables.some((table) => table.startsWith(prefix)), prefix).toBe(true);
  expect(cells).toBeGreaterThan(50);
  expect(found).toEqual([]);
  // What the sender's client put outside the encryption stays what it was: the raw spool row as received (documented).
  expect(outerSeenIn.size).toBeGreaterThan(0);
  for (const place of outerSeenIn) expect(place).toMatch(/^spool\w*\.raw$/);

  // Only the daemon's user may read the database and the keys (whatever the umask).
  for (const file of ['embargo.sqlite', 'embargo.sqlite-wal', 'embargo.sqlite-shm', 'keys', `keys/${announce}.secret.asc`]) {
    const mode = statSync(join(dataDir, file)).mode & 0o777;
    expect(mode.toString(8), file).toBe(file === 'keys' ? '700' : '600');
  }

  // And byte for byte, every file in the data directory (database, -wal, -shm, secret keys).
  for (const file of readdirSync(dataDir, { recursive: true }) as string[]) {
    const path = join(dataDir, file);
    if (!statSync(path).isFile()) continue;
    const text = readable(readFileSync(path));
    for (const tag of tags) {
      expect(text.includes(inner(tag).body.slice(0, 20)), `${file} holds the body of the ${tag} post`).toBe(false);
      expect(text.includes(inner(tag).subject), `${file} holds the subject of the ${tag} post`).toBe(false);
    }
  }
});
