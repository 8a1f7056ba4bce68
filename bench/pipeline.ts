// End-to-end benchmark: SMTP accept of a signed, encrypted post to a list of 100 members → last copy accepted by the relay.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ensureListKey, generateMemberKey } from '../src/crypto/index.ts';
import { startTestDaemon } from '../test/helpers/daemon.ts';
import { createGpgHome } from '../test/helpers/gpg.ts';
import { startRelayPeer } from '../test/helpers/relay.ts';
import { sendMail } from '../test/helpers/smtp.ts';
import type { BenchRow } from './types.ts';

const MEMBERS = 100;
const RUNS = 7;
const KEY_CACHE = join(tmpdir(), 'embargo-bench-pipeline-keys-v1.json');
const domain = 'lists.example.org';
const listName = 'advisories';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Recipients' public keys, generated once and cached between runs. */
async function memberKeys(): Promise<string[]> {
  let keys: string[] = [];
  if (existsSync(KEY_CACHE)) keys = JSON.parse(await readFile(KEY_CACHE, 'utf8')) as string[];
  if (keys.length >= MEMBERS) return keys.slice(0, MEMBERS);
  while (keys.length < MEMBERS) keys.push((await generateMemberKey({ address: `member${keys.length}@bench.example` })).armoredPublicKey);
  await writeFile(KEY_CACHE, JSON.stringify(keys));
  return keys;
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  // The relay's concurrency bounds how fast 100 copies leave; the default (8) and a tuned value side by side.
  for (const concurrency of [8, 32]) rows.push(await once(concurrency));
  return rows;
}

async function once(concurrency: number): Promise<BenchRow> {
  const keys = await memberKeys();
  const poster = await createGpgHome();
  const relay = await startRelayPeer();
  const posterAddress = 'security@xen.example';
  const posterKey = await poster.generateKey({ address: posterAddress, name: 'Security Team' });
  const files: Record<string, string> = { 'keys/poster.asc': await poster.exportPublic(posterKey.fingerprint) };
  const members: Array<Record<string, unknown>> = [{ email: posterAddress, key: '../keys/poster.asc', roles: ['poster'] }];
  keys.forEach((armored, index) => {
    files[`keys/member${index}.asc`] = armored;
    members.push({ email: `member${index}@bench.example`, key: `../keys/member${index}.asc`, roles: ['recipient'] });
  });
  const daemon = await startTestDaemon({
    relay: { host: relay.host, port: relay.port },
    removeLists: ['xen-security-issues', 'xen-security-issues-discuss', 'predisclosure-applications'],
    server: { log: { level: 'warn' }, relay: { concurrency } },
    lists: { [listName]: stringify({ kind: 'announce', archive: 'private', members }) },
    files,
  });
  const durations: number[] = [];
  try {
    const listKey = await ensureListKey({ dataDir: daemon.config.dataDir, listName, domain });
    await poster.importKey(listKey.armoredPublicKey);
    for (let index = 0; index < RUNS; index++) {
      const body = `Advisory ${index}: ${'details of the issue and the patch. '.repeat(280)}`;
      const entity = `Content-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`;
      const ciphertext = await poster.encrypt(entity, { recipients: [listKey.fingerprint], signer: posterKey.fingerprint });
      const raw =
        `From: Security Team <${posterAddress}>\r\nTo: ${listName}@${domain}\r\nSubject: XSA\r\nMessage-ID: <bench-${index}-${Date.now()}@xen.example>\r\n` +
        `MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n` +
        `--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n` +
        `${ciphertext.toString().replace(/\r?\n/g, '\r\n')}\r\n--b--\r\n`;
      const before = relay.messages.length;
      const started = performance.now();
      const sent = await sendMail({ port: daemon.smtpPort, from: posterAddress, to: [`${listName}@${domain}`], raw });
      if (!sent.ok) throw new Error(`post refused: ${sent.code} ${sent.text}`);
      await relay.waitForMessages(before + MEMBERS, 30_000);
      durations.push(performance.now() - started);
    }
  } finally {
    if (process.env.BENCH_DEBUG) for (const line of daemon.logs()) if (line.msg === 'message processed' || line.msg === 'pipeline stages') console.log(JSON.stringify(line));
    await daemon.stop();
    await relay.close();
    await poster.cleanup();
  }
  const value = median(durations);
  return {
    scenario: `SMTP accept of a signed+encrypted 10 KiB post → ${MEMBERS} copies accepted by the relay, relay concurrency ${concurrency} (median of ${RUNS})`,
    metric: 'end to end',
    value: Math.round(value),
    unit: 'ms',
    target: '≤ 300',
    ok: value <= 300,
  };
}
