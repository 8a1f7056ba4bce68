// End-to-end benchmark: a signed+encrypted post to 100 members, SMTP accept → last copy at a relay peer; peak RSS for a 25 MiB post.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { stringify } from 'yaml';
import { SMTPServer } from 'smtp-server';
import { ensureListKey, generateMemberKey } from '../src/crypto/index.ts';
import { createGpgHome, type GpgHome } from '../test/helpers/gpg.ts';
import { startTestDaemon, type TestDaemon } from '../test/helpers/daemon.ts';
import { sendMail } from '../test/helpers/smtp.ts';
import type { BenchRow } from './types.ts';

const domain = 'lists.example.org';
const listName = 'advisories';
const listAddress = `${listName}@${domain}`;
const poster = 'security@xen.example';
const memberCount = 100;
const runs = Number(process.env.BENCH_E2E_RUNS ?? 7);
const postBytes = 100 * 1024;
const bigPostBytes = 25 * 1024 * 1024;
const targetSeconds = 0.3;
const targetRssMiB = 512;

/** A relay peer that counts copies and keeps no bodies (100 copies of 25 MiB would not fit in this process). */
export async function startCountingRelay() {
  const arrivals: Array<{ to: string; at: number; bytes: number; encrypted: boolean }> = [];
  let waiters: Array<() => void> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    onData(stream, session, callback) {
      let bytes = 0;
      let head = '';
      stream.on('data', (chunk: Buffer) => {
        if (head.length < 4096) head += chunk.subarray(0, 4096).toString('latin1');
        bytes += chunk.length;
      });
      stream.on('end', () => {
        for (const rcpt of session.envelope.rcptTo) arrivals.push({ to: rcpt.address, at: performance.timeOrigin + performance.now(), bytes, encrypted: /multipart\/encrypted/i.test(head) });
        callback(null, '2.0.0 Ok');
        const pending = waiters;
        waiters = [];
        for (const wake of pending) wake();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.server.address() as AddressInfo).port,
    arrivals,
    async waitFor(count: number, timeoutMs: number): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (arrivals.length < count) {
        if (Date.now() > deadline) throw new Error(`relay got ${arrivals.length} of ${count} copies in ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A post as GnuPG and a PGP/MIME client make it: the MIME entity signed and encrypted in one OpenPGP message. */
export async function buildPost(gpg: GpgHome, signer: string, listFingerprint: string, bodyBytes: number, index: number): Promise<string> {
  const text = randomBytes(Math.ceil((bodyBytes * 3) / 4)).toString('base64').slice(0, bodyBytes).replace(/.{76}/g, '$&\r\n');
  const entity = `Content-Type: text/plain; charset=us-ascii\r\n\r\nXSA-${index}: benchmark advisory\r\n${text}\r\n`;
  // -z 0: random text does not compress, and gpg would only spend time trying.
  const ciphertext = await gpg.encrypt(entity, { recipients: [listFingerprint], signer, compressLevel: 0 });
  const boundary = `enc-${index}-${Math.random().toString(36).slice(2)}`;
  return (
    `From: Xen Security Team <${poster}>\r\nTo: ${listAddress}\r\nSubject: ...\r\nDate: ${new Date().toUTCString()}\r\n` +
    `Message-ID: <bench-${index}-${Date.now()}@xen.example>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
    `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
    `--${boundary}\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n${ciphertext.toString('latin1').replace(/\r?\n/g, '\r\n')}\r\n` +
    `--${boundary}--\r\n`
  );
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Resident set size now and at its peak (VmHWM), in MiB, of a process (Linux /proc). */
export function rssOf(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { now: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

export interface World {
  daemon: TestDaemon;
  relay: Awaited<ReturnType<typeof startCountingRelay>>;
  gpg: GpgHome;
  posterFingerprint: string;
  listFingerprint: string;
  stop(): Promise<void>;
}

/** `server`: server.yaml settings on top of a retry after 1 s (default: room for the 25 MiB post once it is encrypted and armored). */
export async function startWorld(server: Record<string, unknown> = { smtp: { maxMessageBytes: 48 * 1024 * 1024 } }): Promise<World> {
  const gpg = await createGpgHome();
  const posterKey = await gpg.generateKey({ address: poster, name: 'Xen Security Team' });
  const files: Record<string, string> = { 'keys/poster.asc': await gpg.exportPublic(posterKey.fingerprint) };
  const members: Array<Record<string, unknown>> = [{ email: poster, organisation: 'Xen Project', key: '../keys/poster.asc', roles: ['poster'] }];
  const memberKeys = await Promise.all(Array.from({ length: memberCount }, (_, index) => generateMemberKey({ address: `security@member${index}.example` })));
  memberKeys.forEach((key, index) => {
    files[`keys/member${index}.asc`] = key.armoredPublicKey;
    members.push({ email: `security@member${index}.example`, organisation: `Member ${index}`, key: `../keys/member${index}.asc`, roles: ['recipient'] });
  });
  const relay = await startCountingRelay();
  // A child process, as in production: the bench's own SMTP client and relay peer do not share its event loop.
  const daemon = await startTestDaemon({
    mode: 'child',
    relay: { host: '127.0.0.1', port: relay.port },
    removeLists: ['xen-security-issues', 'xen-security-issues-discuss', 'predisclosure-applications'],
    server: { relay: { retrySchedule: [1] }, ...server },
    lists: { [listName]: stringify({ description: 'benchmark', kind: 'announce', archive: 'private', members }) },
    files,
  });
  const listKey = await ensureListKey({ dataDir: daemon.config.dataDir, listName, domain });
  await gpg.importKey(listKey.armoredPublicKey);
  return {
    daemon,
    relay,
    gpg,
    posterFingerprint: posterKey.fingerprint,
    listFingerprint: listKey.fingerprint,
    async stop() {
      await daemon.stop();
      await relay.close();
      await gpg.cleanup();
    },
  };
}

interface PostTiming {
  /** Start of the SMTP transaction → the last copy accepted by the relay, seconds. */
  total: number;
  /** The 250 (the post is accepted and stored) → the last copy accepted by the relay, seconds: the target's figure. */
  afterAccept: number;
  /** Start of the SMTP transaction → 250, seconds. */
  accept: number;
  /** 250 → the first copy at the relay (pipeline: decrypt, verify, archive, seal, enqueue), seconds. */
  firstCopy: number;
  /** First copy → last copy (delivery of the rest), seconds. */
  spread: number;
  /** Wall-clock times (ms) of the start, the 250 and the first and last copy, for phase-by-phase samples. */
  marks: { started: number; accepted: number; first: number; last: number };
}

/** Sends one post and waits for all 100 copies; returns seconds from the start of the SMTP transaction to the last copy. */
export async function postOnce(world: World, raw: string): Promise<PostTiming> {
  const mark = world.relay.arrivals.length;
  const started = performance.timeOrigin + performance.now();
  const sent = await sendMail({ port: world.daemon.smtpPort, from: poster, to: [listAddress], raw });
  const accepted = performance.timeOrigin + performance.now();
  if (!sent.ok) throw new Error(`post refused: ${sent.code} ${sent.text}`);
  await world.relay.waitFor(mark + memberCount, 120_000);
  const copies = world.relay.arrivals.slice(mark, mark + memberCount);
  if (new Set(copies.map((copy) => copy.to)).size !== memberCount || copies.some((copy) => !copy.encrypted)) {
    throw new Error('the relay did not get one encrypted copy per member');
  }
  const last = Math.max(...copies.map((copy) => copy.at));
  const first = Math.min(...copies.map((copy) => copy.at));
  return {
    total: (last - started) / 1000,
    afterAccept: (last - accepted) / 1000,
    accept: (accepted - started) / 1000,
    firstCopy: (first - accepted) / 1000,
    spread: (last - first) / 1000,
    marks: { started, accepted, first, last },
  };
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const world = await startWorld();
  try {
    const posts = await Promise.all(Array.from({ length: runs + 1 }, (_, index) => buildPost(world.gpg, world.posterFingerprint, world.listFingerprint, postBytes, index)));
    await postOnce(world, posts[0]); // warm-up: JIT, key caches, relay connections
    const results: PostTiming[] = [];
    for (const post of posts.slice(1)) results.push(await postOnce(world, post));
    const afterAccept = median(results.map((result) => result.afterAccept));
    const scenario = `signed+encrypted 100 KiB post → ${memberCount} members (child daemon, median of ${runs})`;
    rows.push({ scenario, metric: 'SMTP accept (250) → last copy at relay', value: afterAccept, unit: 's', target: `≤ ${targetSeconds}`, ok: afterAccept <= targetSeconds });
    rows.push({ scenario, metric: '  250 → first copy (pipeline, sealing)', value: median(results.map((result) => result.firstCopy)) * 1000, unit: 'ms' });
    rows.push({ scenario, metric: '  first → last copy (delivery)', value: median(results.map((result) => result.spread)) * 1000, unit: 'ms' });
    // smtp-server waits a fixed 100 ms before its greeting (to catch clients that talk too early).
    rows.push({ scenario, metric: 'connect → last copy at relay', value: median(results.map((result) => result.total)), unit: 's' });
    rows.push({ scenario, metric: '  connect … 250 (incl. 100 ms greeting pause)', value: median(results.map((result) => result.accept)) * 1000, unit: 'ms' });
    rows.push({ scenario, metric: 'speed-up over Schleuder (12 s, connect to last copy)', value: 12 / median(results.map((result) => result.total)), unit: 'x' });
  } finally {
    await world.stop();
  }

  // Peak memory in a fresh daemon process, so nothing from the runs above counts.
  const big = await startWorld();
  try {
    const pid = big.daemon.child!.pid!;
    const idle = rssOf(pid);
    const raw = await buildPost(big.gpg, big.posterFingerprint, big.listFingerprint, Math.floor(bigPostBytes * 0.7), 0);
    const scenario = `one ${(raw.length / 1048576).toFixed(1)} MiB post (25 MiB advisory, encrypted) → ${memberCount} members`;
    // Sampled while it runs, to tell which phase holds the memory: intake, pipeline (decrypt, seal) or delivery.
    const samples: Array<{ at: number; rss: number }> = [];
    const sampler = setInterval(() => samples.push({ at: performance.timeOrigin + performance.now(), rss: rssOf(pid).now }), 25);
    const timing = await postOnce(big, raw).finally(() => clearInterval(sampler));
    const after = rssOf(pid);
    const peakBetween = (from: number, to: number) => Math.max(0, ...samples.filter((sample) => sample.at >= from && sample.at <= to).map((sample) => sample.rss));
    rows.push({ scenario, metric: 'peak RSS of the daemon (VmHWM)', value: after.peak, unit: 'MiB', target: `≤ ${targetRssMiB}`, ok: after.peak <= targetRssMiB });
    rows.push({ scenario, metric: 'RSS at start (idle)', value: idle.now, unit: 'MiB' });
    rows.push({ scenario, metric: '  sampled peak RSS: intake (→ 250)', value: peakBetween(timing.marks.started, timing.marks.accepted), unit: 'MiB' });
    rows.push({ scenario, metric: '  sampled peak RSS: pipeline (250 → first copy)', value: peakBetween(timing.marks.accepted, timing.marks.first), unit: 'MiB' });
    rows.push({ scenario, metric: '  sampled peak RSS: delivery (first → last copy)', value: peakBetween(timing.marks.first, timing.marks.last), unit: 'MiB' });
    rows.push({ scenario, metric: 'SMTP accept (250) → last copy at relay', value: timing.afterAccept, unit: 's' });
    rows.push({ scenario, metric: '  250 → first copy (pipeline, sealing)', value: timing.firstCopy, unit: 's' });
  } finally {
    await big.stop();
  }
  return rows;
}
