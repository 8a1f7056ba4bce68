// 50 clients at once over real SMTP: every 250 has its own row, with its bytes, in the real SQLite file.
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDaemon } from '../helpers/daemon.ts';
import type { TestDaemon } from '../helpers/daemon.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';
import { asSent } from '../../src/queues/trace.ts';

const list = 'xen-security-issues-discuss@lists.example.org';

describe('smtp intake under concurrency', () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon({ mode: 'child' });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('spools every message of 50 concurrent clients', async () => {
    const messages = Array.from({ length: 50 }, (_, index) => makeMessage({ to: list, size: 10_240, messageId: `<concurrent-${index}@test.invalid>` }));
    const results = await Promise.all(
      messages.map((raw, index) => sendMail({ port: daemon.smtpPort, from: `client${index}@example.net`, to: [list], raw })),
    );
    expect(results.map((result) => result.code)).toEqual(Array(50).fill(250));
    const ids = results.map((result) => result.spoolId!);
    expect(new Set(ids).size).toBe(50);

    const db = new Database(daemon.config.dbFile, { readonly: true });
    const rows = db.prepare(`SELECT id, mail_from, raw FROM spool WHERE id IN (${ids.map(() => '?').join(',')})`).all(...ids) as Array<{
      id: string;
      mail_from: string;
      raw: Buffer;
    }>;
    db.close();
    expect(rows).toHaveLength(50);
    for (const row of rows) {
      const index = ids.indexOf(row.id);
      expect(row.mail_from).toBe(`client${index}@example.net`);
      expect(asSent(row.raw, row.id).toString()).toBe(messages[index]);
    }
  });
});
