// Intake and other writers share one SQLite file: a 250 waits for another connection's write lock, it does not fail or block.
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { SmtpClient, makeMessage, sendMail } from '../helpers/smtp.ts';

const list = 'xen-security-issues@lists.example.org';

describe('spool write lock', () => {
  let daemon: TestDaemon;
  // A child process: the lock holder below must not share an event loop with the daemon it blocks.
  beforeAll(async () => {
    daemon = await startTestDaemon({ mode: 'child' });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('waits for a write lock held by another connection (e.g. the CLI), keeps serving other commands, then answers 250', async () => {
    const other = new Database(daemon.config.dbFile);
    other.exec('BEGIN IMMEDIATE');
    let answered = false;
    const sending = sendMail({ port: daemon.smtpPort, from: 'sender@example.net', to: [list], raw: makeMessage({ to: list }) }).finally(() => {
      answered = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(answered).toBe(false);
    // Intake's event loop is not asleep in SQLite's busy handler: a second client is greeted and served meanwhile.
    const meanwhile = await SmtpClient.connect(daemon.smtpPort);
    expect(meanwhile.greeting.code).toBe(220);
    expect((await meanwhile.ehlo()).code).toBe(250);
    await meanwhile.quit();
    other.exec('COMMIT');
    other.close();
    const result = await sending;
    expect(result).toMatchObject({ ok: true, code: 250 });
    const db = new Database(daemon.config.dbFile, { readonly: true });
    expect(db.prepare('SELECT COUNT(*) AS count FROM spool WHERE id = ?').get(result.spoolId)).toEqual({ count: 1 });
    db.close();
  });
});
