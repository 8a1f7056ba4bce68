// Fault: the data directory's file system fills up. SMTP answers 451 (never a 250 it cannot keep), the daemon stays up, and it recovers when space returns.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeTestConfig, publicListOf, startTestDaemon, waitForSpoolState } from '../helpers/daemon.ts';
import type { TestConfig, TestDaemon } from '../helpers/daemon.ts';
import { startRelayPeer } from '../helpers/relay.ts';
import type { RelayPeer } from '../helpers/relay.ts';
import { skipWithoutRoot } from '../helpers/root.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const withoutRoot = skipWithoutRoot('the disk-full test mounts a tmpfs as the data directory, which');

const list = 'predisclosure-applications@lists.example.org';
let config: TestConfig;
let daemon: TestDaemon;
let relay: RelayPeer;
let mounted = false;

beforeAll(async () => {
  relay = await startRelayPeer();
  config = makeTestConfig({
    relay: { host: relay.host, port: relay.port },
    // No reserve: this test is about the disk really filling up (the reserve's 452 is tested in test/smtp/backpressure.test.ts).
    server: { smtp: { freeSpaceReserveMiB: 0 } },
    lists: {
      'predisclosure-applications': publicListOf([{ email: 'security@xenproject.example', keyFile: 'xenproject-security.asc' }], { postsPerHourPerSender: 10_000 }),
    },
  });
  mkdirSync(config.dataDir);
  // A small file system of its own for the data directory (the test runs as root, as CI does).
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', config.dataDir]);
  mounted = true;
  daemon = await startTestDaemon({ mode: 'child', config });
});

afterAll(async () => {
  await daemon?.stop({ keepFiles: true });
  await relay?.close();
  if (mounted) execFileSync('umount', ['-l', config.dataDir]);
  config?.cleanup();
});

/** Fills what is left of the file system with one file, then gives back `leaveBytes`; returns the file's path. */
function fillDisk(leaveBytes: number): string {
  const filler = join(config.dataDir, 'filler');
  const fd = openSync(filler, 'w');
  const block = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, block);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  truncateSync(filler, Math.max(0, statSync(filler).size - leaveBytes));
  return filler;
}

const post = (index: number, size = 300 * 1024) =>
  sendMail({ port: daemon.smtpPort, from: `applicant${index}@vendor.example`, to: [list], raw: makeMessage({ from: `applicant${index}@vendor.example`, to: list, subject: `application ${index}`, size }) });

it.skipIf(withoutRoot)('answers 451 while the disk is full, keeps every message it said 250 to, and takes mail again once space returns', async () => {
  // Mail keeps arriving (two senders) while the disk fills up, so intake and the pipeline both meet the full disk.
  const accepted: string[] = [];
  const codes: Record<'before' | 'full' | 'after', number[]> = { before: [], full: [], after: [] };
  let phase: keyof typeof codes = 'before';
  let running = true;
  let index = 0;
  const sender = async () => {
    while (running) {
      const result = await post(index++, 100 * 1024);
      codes[phase].push(result.code);
      if (result.code === 250) accepted.push(result.spoolId!);
    }
  };
  const senders = [sender(), sender()];
  while (accepted.length < 6) await new Promise((resolve) => setTimeout(resolve, 10));
  const filler = fillDisk(0);
  phase = 'full';
  await new Promise((resolve) => setTimeout(resolve, 2000));
  expect(daemon.child!.exitCode).toBeNull();
  // Space returns.
  rmSync(filler);
  phase = 'after';
  await new Promise((resolve) => setTimeout(resolve, 1000));
  running = false;
  await Promise.all(senders);

  const all = [...codes.before, ...codes.full, ...codes.after];
  expect(all.every((code) => code === 250 || code === 451), JSON.stringify(codes)).toBe(true);
  expect(codes.full.filter((code) => code === 451).length).toBeGreaterThan(5);
  expect(codes.after.filter((code) => code === 250).length).toBeGreaterThan(0);

  // Nothing lost: every message answered 250 reaches a final state and its copy reaches the relay.
  const states = await waitForSpoolState(config.dbFile, accepted, 'done');
  expect(states.filter((state) => state !== 'done'), JSON.stringify(states)).toEqual([]);
  await relay.waitForMessages(accepted.length, 30_000);
  expect(daemon.child!.exitCode).toBeNull();
  expect(daemon.logs().some((line) => line.msg === 'spool store failed')).toBe(true);
  expect(daemon.logs().filter((line) => line.msg === 'message shunted after an exception')).toEqual([]);
  const pipelineWaited = daemon.logs().filter((line) => line.msg === 'database busy; message is tried again shortly').length;
  console.log(
    `disk full: ${codes.full.filter((code) => code === 451).length} of ${codes.full.length} answered 451 while full; the pipeline waited ${pipelineWaited} times for space; all ${accepted.length} messages answered 250 were delivered after space returned`,
  );
}, 90_000);
