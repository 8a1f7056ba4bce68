// Tables of the inbound spool: every accepted message's raw bytes and envelope, committed before the 250 reply.
import type { Migration } from '../store/migrations.ts';

export const spoolMigrations: Migration[] = [
  {
    id: 'spool-001-create',
    sql: `
      CREATE TABLE spool (
        id TEXT PRIMARY KEY,
        received_at INTEGER NOT NULL,
        mail_from TEXT NOT NULL,
        rcpt_to TEXT NOT NULL,            -- JSON array of envelope recipients
        remote_address TEXT,
        helo TEXT,
        size INTEGER NOT NULL,
        raw BLOB NOT NULL,
        -- queued -> processing -> done | held | rejected | discarded | shunted
        state TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        list TEXT,
        outcome TEXT,
        reason TEXT,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX spool_state ON spool(state, received_at);
    `,
  },
];
