// Flood benchmark: 300 compression bombs from one address, then a signed advisory from another; and what one bomb costs the pipeline.
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import type { TestDaemon } from '../test/helpers/daemon.ts';
import type { GpgHome } from '../test/helpers/gpg.ts';
import { sendMail } from '../test/helpers/smtp.ts';
import { median, startWorld, type World } from './e2e.ts';
import type { BenchRow } from './types.ts';

const domain = 'lists.example.org';
const listName = 'advisories';
const listAddress = `${listName}@${domain}`;
const poster = 'security@xen.example';
const attacker = 'flood@outside.example';
const memberCount = 100;
const floodSize = Number(process.env.BENCH_FLOOD_BOMBS ?? 300);
const floodConnections = 6;
const bombZeroBytes = 200 * 1024 * 1024;
const singleBombRuns = 20;
const targetAdvisorySeconds = 10;
const targetBombMs = 50;

/** 200 MB of zeros encrypted to the list key (zlib -z 9, as the attacker did): about 200 KB on the wire. */
async function bombArmor(gpg: GpgHome, listFingerprint: string): Promise<string> {
  const zeros = spawn('head', ['-c', String(bombZeroBytes), '/dev/zero'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const armored = await gpg.encrypt(zeros.stdout, { recipients: [listFingerprint], compressAlgo: 'zlib', compressLevel: 9 });
  return armored.toString('latin1').replace(/\r?\n/g, '\r\n');
}

const bombMail = (armored: string, index: number) =>
  `From: <${attacker}>\r\nTo: ${listAddress}\r\nSubject: ...\r\nMessage-ID: <bomb-${index}-${Date.now()}@outside.example>\r\nMIME-Version: 1.0\r\n` +
  'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n' +
  '--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
  `--b\r\nContent-Type: application/octet-stream\r\n\r\n${armored}\r\n--b--\r\n`;

async function advisoryMail(gpg: GpgHome, posterFingerprint: string, listFingerprint: string): Promise<string> {
  const entity = 'Content-Type: text/plain; charset=us-ascii\r\n\r\nXSA-999: the advisory sent right after the flood\r\n';
  const ciphertext = await gpg.encrypt(entity, { recipients: [listFingerprint], signer: posterFingerprint });
  return (
    `From: Xen Security Team <${poster}>\r\nTo: ${listAddress}\r\nSubject: ...\r\nDate: ${new Date().toUTCString()}\r\n` +
    `Message-ID: <flood-advisory-${Date.now()}@xen.example>\r\nMIME-Version: 1.0\r\n` +
    'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="e"\r\n\r\n' +
    '--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
    `--e\r\nContent-Type: application/octet-stream\r\n\r\n${ciphertext.toString('latin1').replace(/\r?\n/g, '\r\n')}\r\n--e--\r\n`
  );
}

/** Final states of spool rows, read from the daemon's database file (WAL: safe while it runs). */
function statesOf(dbFile: string, ids: string[]): Map<string, { state: string; reason: string | null }> {
  const db = new Database(dbFile, { readonly: true });
  try {
    const get = db.prepare('SELECT state, reason FROM spool WHERE id = ?');
    return new Map(ids.map((id) => [id, (get.get(id) as { state: string; reason: string | null } | undefined) ?? { state: 'missing', reason: null }]));
  } finally {
    db.close();
  }
}

async function waitUntilFinished(dbFile: string, ids: string[], timeoutMs: number): Promise<Map<string, { state: string; reason: string | null }>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = statesOf(dbFile, ids);
    if ([...states.values()].every((row) => row.state !== 'queued' && row.state !== 'processing') || Date.now() > deadline) return states;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The pipeline's own time for a spool row: the `ms` of its "message processed" (or shunt) log line. */
function pipelineMs(daemon: TestDaemon, spoolId: string): number | null {
  const line = daemon.logs().find((each) => each.msg === 'message processed' && each.spoolId === spoolId);
  return typeof line?.ms === 'number' ? line.ms : null;
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const world = await startWorld({});
  try {
    const bomb = await bombArmor(world.gpg, world.listFingerprint);
    const advisory = await advisoryMail(world.gpg, world.posterFingerprint, world.listFingerprint);
    const wireKiB = Math.round(bombMail(bomb, 0).length / 1024);

    // One bomb at a time on a quiet daemon: what refusing it costs the pipeline.
    const single: number[] = [];
    for (let index = 0; index < singleBombRuns; index++) {
      const sent = await sendMail({ port: world.daemon.smtpPort, localAddress: '127.0.0.3', from: attacker, to: [listAddress], raw: bombMail(bomb, 100_000 + index) });
      if (!sent.ok || !sent.spoolId) throw new Error(`bomb refused at SMTP: ${sent.code} ${sent.text}`);
      const [state] = (await waitUntilFinished(world.daemon.config.dbFile, [sent.spoolId], 60_000)).values();
      if (state.state !== 'rejected' || !/compression-bomb/.test(state.reason ?? '')) throw new Error(`bomb ended ${state.state}: ${state.reason}`);
      const ms = pipelineMs(world.daemon, sent.spoolId);
      if (ms !== null) single.push(ms);
    }
    const bombMedian = median(single);
    const bombScenario = `compression bomb: ${bombZeroBytes / 1048576} MiB of zeros, zlib -z 9, ${wireKiB} KiB on the wire (median of ${singleBombRuns})`;
    rows.push({ scenario: bombScenario, metric: 'pipeline time to refuse one bomb', value: bombMedian, unit: 'ms', target: `≤ ${targetBombMs}`, ok: bombMedian <= targetBombMs });

    // The flood: from 127.0.0.2 over six connections at once, as fast as the daemon answers.
    const replies: Array<{ code: number; spoolId?: string }> = [];
    let next = 0;
    const floodStarted = performance.now();
    const connection = async () => {
      while (next < floodSize) {
        const index = next++;
        const sent = await sendMail({ port: world.daemon.smtpPort, localAddress: '127.0.0.2', from: attacker, to: [listAddress], raw: bombMail(bomb, index) });
        replies.push({ code: sent.code, spoolId: sent.spoolId });
      }
    };
    await Promise.all(Array.from({ length: floodConnections }, connection));
    const floodSeconds = (performance.now() - floodStarted) / 1000;

    // Right after: the team's signed advisory, from another address.
    const mark = world.relay.arrivals.length;
    const sent = await sendMail({ port: world.daemon.smtpPort, from: poster, to: [listAddress], raw: advisory });
    const accepted = performance.timeOrigin + performance.now();
    if (!sent.ok) throw new Error(`advisory refused: ${sent.code} ${sent.text}`);
    await world.relay.waitFor(mark + memberCount, 300_000);
    const copies = world.relay.arrivals.slice(mark).filter((copy) => copy.to !== poster);
    const last = Math.max(...copies.slice(0, memberCount).map((copy) => copy.at));
    const advisorySeconds = (last - accepted) / 1000;

    const spooled = replies.filter((reply) => reply.code === 250).map((reply) => reply.spoolId!);
    const refused = replies.filter((reply) => reply.code === 451).length;
    const other = replies.length - spooled.length - refused;
    const drainStarted = performance.now();
    const states = await waitUntilFinished(world.daemon.config.dbFile, spooled, 300_000);
    const order = world.daemon.logs().filter((line) => line.msg === 'message processed').map((line) => line.spoolId);
    const advisoryAt = order.indexOf(sent.spoolId);
    const floodAfterAdvisory = spooled.filter((id) => order.indexOf(id) > advisoryAt).length;
    const count = (state: string) => [...states.values()].filter((row) => row.state === state).length;
    const floodScenario = `${floodSize} bombs from one address over ${floodConnections} connections (${floodSeconds.toFixed(1)} s), then a signed advisory → ${memberCount} members`;
    rows.push({ scenario: floodScenario, metric: 'advisory: SMTP accept (250) → last copy at relay', value: advisorySeconds, unit: 's', target: `≤ ${targetAdvisorySeconds}`, ok: advisorySeconds <= targetAdvisorySeconds });
    rows.push({ scenario: floodScenario, metric: '  flood refused at SMTP (451 4.7.1, backlog per address)', value: refused, unit: 'messages' });
    rows.push({ scenario: floodScenario, metric: '  flood accepted (250)', value: spooled.length, unit: 'messages' });
    if (other > 0) rows.push({ scenario: floodScenario, metric: '  flood: other SMTP replies', value: other, unit: 'messages' });
    rows.push({ scenario: floodScenario, metric: '  flood processed: rejected as bombs', value: [...states.values()].filter((row) => row.state === 'rejected' && /compression-bomb/.test(row.reason ?? '')).length, unit: 'messages' });
    rows.push({ scenario: floodScenario, metric: '  flood shunted', value: count('shunted'), unit: 'messages', target: '= 0', ok: count('shunted') === 0 });
    rows.push({ scenario: floodScenario, metric: '  flood drained after the advisory’s last copy', value: (performance.now() - drainStarted) / 1000, unit: 's' });
    rows.push({ scenario: floodScenario, metric: '  flood processed after the advisory (fair turns)', value: floodAfterAdvisory, unit: 'messages' });
  } finally {
    await world.stop();
  }
  return rows;
}
