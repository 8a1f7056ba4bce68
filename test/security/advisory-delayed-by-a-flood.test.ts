// Threat: a flood of compression bombs from one address delays the security team's advisory. The flood is held back at
// intake (451 4.7.1 past the per-address backlog) and what got in is served fairly: the advisory is processed first.
import { spawn } from 'node:child_process';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loader.ts';
import { databaseFile } from '../../src/data-dir.ts';
import { migrations } from '../../src/schema.ts';
import { maxClaimedAhead } from '../../src/lists/worker.ts';
import { startIntakeThread } from '../../src/intake/intake-host.ts';
import { startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { announce, buildPost, decryptCopy, domain, newMessageId, startListWorld } from '../helpers/lists.ts';
import type { ListWorld } from '../helpers/lists.ts';
import { sendMail } from '../helpers/smtp.ts';

const listAddress = `${announce}@${domain}`;
const maxBacklogPerAddress = 12;
const floodSize = 20;

let world: ListWorld;
let restarted: TestDaemon | null = null;

beforeAll(async () => {
  world = await startListWorld({ server: { smtp: { rateLimit: { maxBacklogPerAddress } } } });
});

afterAll(async () => {
  await restarted?.stop();
  await world?.stop();
});

/** A PGP/MIME post whose encrypted part is one OpenPGP message: 64 MiB of zeros, compressed to about 70 KB. */
async function compressionBomb(): Promise<string> {
  const zeros = spawn('head', ['-c', String(64 * 1024 * 1024), '/dev/zero'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const armored = await world.outsider.gpg.encrypt(zeros.stdout, { recipients: [world.listKeys[announce].fingerprint], compressAlgo: 'zlib', compressLevel: 6 });
  return armored.toString('utf8').replace(/\r?\n/g, '\r\n');
}

const bombMail = (armored: string, index: number) =>
  `From: ${world.outsider.address}\r\nTo: ${listAddress}\r\nSubject: flood ${index}\r\nMessage-ID: <${newMessageId()}>\r\nMIME-Version: 1.0\r\n` +
  'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n' +
  '--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
  `--b\r\nContent-Type: application/octet-stream\r\n\r\n${armored}\r\n--b--\r\n`;

describe('a flood of compression bombs from one address', () => {
  it('is refused at intake past the backlog cap, and the advisory sent after it is processed before the flood', async () => {
    const bomb = await compressionBomb();
    const advisory = await buildPost(world, { from: world.security, to: listAddress, subject: 'XSA-999: flood test', body: 'Embargoed until the flood is over.' });

    // The flood arrives while the pipeline is not running (intake alone, as in its own thread in the daemon): the
    // backlog it leaves is then exactly what the pipeline finds, whatever the speed of this machine.
    const config = world.daemon.config;
    await world.daemon.stop({ keepFiles: true });
    const loaded = await loadConfig(config.configDir);
    if (!loaded.ok) throw new Error('test config invalid');
    const intake = await startIntakeThread({
      config: loaded.config,
      databaseFile: databaseFile(loaded.config),
      migrations,
      logger: pino({ level: 'silent' }),
      onSpooled: () => undefined,
    });
    const floodReplies: Array<{ code: number; text: string; spoolId?: string }> = [];
    let next = 0;
    // Six connections at once from 127.0.0.2, as the attacker did.
    const connection = async () => {
      while (next < floodSize) {
        const index = next++;
        floodReplies.push(await sendMail({ port: intake.port, localAddress: '127.0.0.2', from: world.outsider.address, to: [listAddress], raw: bombMail(bomb, index) }));
      }
    };
    await Promise.all(Array.from({ length: 6 }, connection));
    const advisoryReply = await sendMail({ port: intake.port, from: world.security.address, to: [listAddress], raw: advisory.raw });
    await intake.close();

    const accepted = floodReplies.filter((reply) => reply.code === 250).map((reply) => reply.spoolId!);
    const refused = floodReplies.filter((reply) => reply.code !== 250);
    // The per-address cap is checked at MAIL FROM, so the six connections can pass it by at most six.
    expect(accepted.length).toBeGreaterThanOrEqual(maxBacklogPerAddress);
    expect(accepted.length).toBeLessThanOrEqual(maxBacklogPerAddress + 6);
    expect(refused.length).toBe(floodSize - accepted.length);
    for (const reply of refused) expect(`${reply.code} ${reply.text}`).toMatch(/^451 4\.7\.1 /);
    expect(advisoryReply.code).toBe(250);

    restarted = await startTestDaemon({ config });
    const processed: string[] = [];
    const all = [...accepted, advisoryReply.spoolId!];
    await restarted.waitForLog((line) => {
      if (line.msg === 'message processed' && typeof line.spoolId === 'string') processed.push(line.spoolId);
      return all.every((id) => processed.includes(id));
    }, 120_000);
    const order = restarted.logs().filter((line) => line.msg === 'message processed').map((line) => line.spoolId);
    // The advisory is claimed first (its own turn, and a registered poster's envelope sender within the turn). A bomb
    // claimed with it may be done sooner (they are opened in parallel threads), but no more than the pipeline claims
    // ahead: the advisory is handled before the flood's rest.
    const position = order.indexOf(advisoryReply.spoolId);
    expect(position).toBeGreaterThanOrEqual(0);
    expect(position).toBeLessThan(Math.min(maxClaimedAhead, accepted.length));
    expect(accepted.length - position).toBeGreaterThan(0);

    // The flood ends rejected as bombs, none shunted; the advisory reaches the members.
    const states = restarted.daemon!.db.prepare(`SELECT state, reason FROM spool WHERE id IN (${accepted.map(() => '?').join(',')})`).all(...accepted) as Array<{ state: string; reason: string }>;
    expect(states).toHaveLength(accepted.length);
    for (const row of states) {
      expect(row.state).toBe('rejected');
      expect(row.reason).toMatch(/compression-bomb/);
    }
    await world.relay.waitForMessages(1, 30_000);
    const deadline = Date.now() + 30_000;
    while (world.relay.deliveredTo(world.vendorA.address).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const [copy] = world.relay.deliveredTo(world.vendorA.address);
    expect(copy).toBeDefined();
    expect((await decryptCopy(world.vendorA, copy)).stdout.toString()).toContain('Embargoed until the flood is over.');
  }, 180_000);
});
