// Tables of the scheduled jobs: which key-expiry reminders were sent, so a reminder is not repeated within a week.
import type { Migration } from '../store/migrations.ts';

export const opsMigrations: Migration[] = [
  {
    id: 'ops-001-create',
    sql: `
      -- One row per reminder sent to a member about one key and its expiry time. A renewed key (new expiry or
      -- new fingerprint) is a new row, so its reminder is never suppressed by the old one.
      CREATE TABLE key_reminders (
        address TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        sent_at INTEGER NOT NULL,
        PRIMARY KEY (address, fingerprint, expires_at, sent_at)
      );
      CREATE INDEX key_reminders_sent ON key_reminders(sent_at);
    `,
  },
];
