// Fault: the data directory's file system turns read-only under the running daemon (ext4 errors=remount-ro after an error). SMTP answers 451, nothing answered 250 is lost.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeTestConfig, publicListOf, startTestDaemon, waitForSpoolState } from '../helpers/daemon.ts';
import type { TestConfig, TestDaemon } from '../helpers/daemon.ts';
import { startRelayPeer } from '../helpers/relay.ts';
import type { RelayPeer } from '../helpers/relay.ts';
import { skipWithoutRoot } from '../helpers/root.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const withoutRoot = skipWithoutRoot('the read-only-disk test mounts an ext4 loop image as the data directory, which');

const list = 'predisclosure-applications@lists.example.org';
let config: TestConfig;
let daemon: TestDaemon | null = null;
let relay: RelayPeer;
let image: string;
let mounted = false;

const mount = () => {
  execFileSync('mount', ['-o', 'loop,errors=remount-ro', image, config.dataDir]);
  mounted = true;
};
const unmount = () => {
  execFileSync('umount', [config.dataDir]);
  mounted = false;
};
/** The loop device behind the data directory, e.g. loop3. */
const loopDevice = () => {
  const line = readFileSync('/proc/mounts', 'utf8').split('\n').find((entry) => entry.split(' ')[1] === config.dataDir)!;
  return line.split(' ')[0].replace('/dev/', '');
};

beforeAll(async () => {
  relay = await startRelayPeer();
  config = makeTestConfig({
    relay: { host: relay.host, port: relay.port },
    // A 48 MiB disk is below the default free-space reserve; this test is about a disk that turns read-only.
    server: { smtp: { freeSpaceReserveMiB: 0 } },
    lists: {
      'predisclosure-applications': publicListOf([{ email: 'security@xenproject.example', keyFile: 'xenproject-security.asc' }], { postsPerHourPerSender: 10_000 }),
    },
  });
  // An ext4 file system of its own, mounted as real servers mount data disks: remount read-only on errors.
  image = join(config.root, 'data.img');
  execFileSync('truncate', ['-s', '48M', image]);
  execFileSync('mkfs.ext4', ['-q', '-F', image]);
  mkdirSync(config.dataDir);
  mount();
  daemon = await startTestDaemon({ mode: 'child', config });
});

afterAll(async () => {
  await daemon?.stop({ keepFiles: true });
  await relay?.close();
  if (mounted) execFileSync('umount', ['-l', config.dataDir]);
  // beforeAll may have failed before the image was made.
  if (image) rmSync(image, { force: true });
  config?.cleanup();
});

const post = (index: number) =>
  sendMail({ port: daemon!.smtpPort, from: `applicant${index}@vendor.example`, to: [list], raw: makeMessage({ from: `applicant${index}@vendor.example`, to: list, subject: `application ${index}`, size: 20 * 1024 }) });

it.skipIf(withoutRoot)('answers 451 once the disk is read-only, stays up, and after repair and restart delivers every message it said 250 to', async () => {
  const accepted: string[] = [];
  const codes: Record<'before' | 'readOnly', number[]> = { before: [], readOnly: [] };
  let phase: keyof typeof codes = 'before';
  let running = true;
  let index = 0;
  const sender = async () => {
    while (running) {
      const result = await post(index++);
      codes[phase].push(result.code);
      if (result.code === 250) accepted.push(result.spoolId!);
    }
  };
  const senders = [sender(), sender()];
  while (accepted.length < 6) await new Promise((resolve) => setTimeout(resolve, 10));
  // What the kernel does on an I/O error with errors=remount-ro; ext4 offers the same as a test trigger.
  execFileSync('sh', ['-c', `echo 1 > /sys/fs/ext4/${loopDevice()}/trigger_fs_error`]);
  phase = 'readOnly';
  await new Promise((resolve) => setTimeout(resolve, 2000));
  running = false;
  await Promise.all(senders);
  expect(readFileSync("/proc/mounts", "utf8").split("\n").find((entry) => entry.split(" ")[1] === config.dataDir)).toMatch(/ ext4 (ro,|.*emergency_ro)/);

  const all = [...codes.before, ...codes.readOnly];
  expect(all.every((code) => code === 250 || code === 451), JSON.stringify(codes)).toBe(true);
  // A commit racing the switch may still land in the journal's last moment; after that, only 451.
  expect(codes.readOnly.slice(2).every((code) => code === 451), JSON.stringify(codes.readOnly)).toBe(true);
  expect(codes.readOnly.length).toBeGreaterThan(5);
  expect(daemon!.child!.exitCode).toBeNull();
  expect(daemon!.logs().filter((line) => line.msg === 'message shunted after an exception')).toEqual([]);

  // The admin's way back: stop, repair, mount again, start. Nothing answered 250 may be missing.
  await daemon!.stop({ keepFiles: true });
  unmount();
  try {
    execFileSync('e2fsck', ['-fy', image], { stdio: 'ignore' });
  } catch (error) {
    // Exit codes 1 and 2 mean "errors corrected".
    if (![1, 2].includes((error as { status?: number }).status ?? -1)) throw error;
  }
  mount();
  daemon = await startTestDaemon({ mode: 'child', config });
  const states = await waitForSpoolState(config.dbFile, accepted, 'done');
  expect(states.filter((state) => state !== 'done'), JSON.stringify(states)).toEqual([]);
  await relay.waitForMessages(accepted.length, 30_000);
  console.log(`read-only disk: ${codes.readOnly.filter((code) => code === 451).length} of ${codes.readOnly.length} answered 451 while read-only; all ${accepted.length} messages answered 250 delivered after repair and restart`);
}, 90_000);
