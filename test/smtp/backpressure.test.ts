// Intake backpressure over real SMTP: too much unprocessed mail from one address (451 4.7.1) or in all (451 4.3.2), and the disk reserve (452).
import { statfsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const list = 'predisclosure-applications@lists.example.org';

/**
 * Rows the pipeline is working on ('processing' rows are never claimed again while the daemon runs): a backlog that
 * stays put for as long as the test needs, from the client address given.
 */
function addBacklog(dbFile: string, remoteAddress: string, count: number, receivedAt = Date.now()): string[] {
  const db = new Database(dbFile);
  try {
    const insert = db.prepare(
      `INSERT INTO spool (id, received_at, mail_from, rcpt_to, remote_address, size, raw, state, attempts, updated_at)
       VALUES (?, ?, 'flood@outside.example', ?, ?, 1, x'41', 'processing', 1, ?)`,
    );
    return Array.from({ length: count }, (_, index) => {
      const id = `BACKLOG${remoteAddress.replace(/\D/g, '')}${index}`;
      insert.run(id, receivedAt, JSON.stringify([list]), remoteAddress, Date.now());
      return id;
    });
  } finally {
    db.close();
  }
}

function finish(dbFile: string, ids: string[]): void {
  const db = new Database(dbFile);
  try {
    for (const id of ids) db.prepare(`UPDATE spool SET state = 'done' WHERE id = ?`).run(id);
  } finally {
    db.close();
  }
}

const post = (daemon: TestDaemon, localAddress?: string, mailParameters?: string) =>
  sendMail({ port: daemon.smtpPort, localAddress, from: 'applicant@vendor.example', to: [list], raw: makeMessage({ to: list }), mailParameters });

describe('smtp intake backpressure', () => {
  let daemon: TestDaemon | undefined;
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
  });

  it('answers 451 4.7.1 at MAIL FROM to an address with maxBacklogPerAddress messages unprocessed, and takes its mail again once they are', async () => {
    daemon = await startTestDaemon({ server: { smtp: { rateLimit: { maxBacklogPerAddress: 3 } } } });
    const backlog = addBacklog(daemon.config.dbFile, '127.0.0.1', 3, Date.now() - 120_000);
    const refused = await post(daemon);
    expect(refused).toMatchObject({ ok: false, code: 451, stage: 'mail' });
    expect(refused.text).toMatch(/^4\.7\.1 .*try again later/);
    // Another client address is not held back by this one's backlog.
    expect((await post(daemon, '127.0.0.2')).code).toBe(250);
    finish(daemon.config.dbFile, backlog.slice(0, 1));
    expect((await post(daemon)).code).toBe(250);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/embargo_smtp_refused_total\{code="451",reason="backlog-address"\} 1/);
    // Two of the three rows still wait (plus the two messages just accepted, unless the pipeline already took them).
    const waiting = Number(/^embargo_spool_backlog\{class="other"\} (\d+)$/m.exec(metrics)?.[1]);
    expect(waiting).toBeGreaterThanOrEqual(2);
    expect(waiting).toBeLessThanOrEqual(4);
    expect(metrics).toMatch(/^embargo_spool_backlog\{class="poster"\} 0$/m);
    expect(Number(/^embargo_spool_oldest_unprocessed_age_seconds\{class="other"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(120);
  });

  it('answers 451 4.3.2 to everyone once maxBacklog messages are unprocessed in all, however spread out', async () => {
    daemon = await startTestDaemon({ server: { smtp: { rateLimit: { maxBacklog: 4, maxBacklogPerAddress: 50 } } } });
    addBacklog(daemon.config.dbFile, '192.0.2.1', 2);
    addBacklog(daemon.config.dbFile, '192.0.2.2', 2);
    const refused = await post(daemon, '127.0.0.3');
    expect(refused).toMatchObject({ ok: false, code: 451, stage: 'mail' });
    expect(refused.text).toMatch(/^4\.3\.2 /);
  });

  it('answers 452 4.3.1 when the data directory\'s file system has less free space than the reserve, before the disk is full', async () => {
    // A reserve larger than the whole file system: every message would eat into it.
    const stats = statfsSync('/tmp');
    const wholeDiskMiB = Math.ceil((stats.blocks * stats.bsize) / (1024 * 1024));
    daemon = await startTestDaemon({ server: { smtp: { freeSpaceReserveMiB: wholeDiskMiB + 1 } } });
    const refused = await post(daemon);
    expect(refused).toMatchObject({ ok: false, code: 452, stage: 'mail' });
    expect(refused.text).toMatch(/^4\.3\.1 insufficient system storage/);
  });

  it('counts the SIZE a client declares against the reserve at MAIL FROM', async () => {
    const stats = statfsSync('/tmp');
    const availableMiB = Math.floor((stats.bavail * stats.bsize) / (1024 * 1024));
    // 4 GiB of margin for whatever else writes to this disk meanwhile; a declared 8 GiB message does not fit.
    const reserve = availableMiB - 4096;
    daemon = await startTestDaemon({ server: { smtp: { freeSpaceReserveMiB: reserve, maxMessageBytes: 16 * 1024 ** 3 } } });
    const refused = await post(daemon, undefined, `SIZE=${8 * 1024 ** 3}`);
    expect(refused).toMatchObject({ ok: false, code: 452, stage: 'mail' });
    expect((await post(daemon, undefined, 'SIZE=2000')).code).toBe(250);
  });
});
