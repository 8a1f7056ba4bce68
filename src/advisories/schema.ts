// Tables of advisories on announce lists: the advisory and its revisions, the change log, the audit trail.
import type { Migration } from '../store/migrations.ts';

export const advisoryMigrations: Migration[] = [
  {
    id: 'advisories-001-create',
    sql: `
      -- One row per advisory id per announce list. Ids, dates and states are in clear (the scheduler and the CLI need
      -- them without a key); titles and text live only in the revisions' OpenPGP blobs.
      CREATE TABLE advisories (
        id INTEGER PRIMARY KEY,
        list TEXT NOT NULL,
        advisory_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('embargoed', 'released', 'cancelled', 'no-date')),
        embargo_until INTEGER,
        -- The newest revision's number; it governs what is published and when.
        revision INTEGER NOT NULL DEFAULT 0,
        published_revision INTEGER,
        published_to TEXT,
        published_message_id TEXT,
        published_entry_id INTEGER,
        released_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (list, advisory_id)
      );
      CREATE INDEX advisories_due ON advisories (embargo_until) WHERE state = 'embargoed';

      -- Every post with the advisory's id. The blob, encrypted to the list key, holds the members' copy (to send it
      -- again to late members) and the signed content as the team wrote it (to publish it byte-exact).
      CREATE TABLE advisory_revisions (
        advisory INTEGER NOT NULL REFERENCES advisories (id),
        revision INTEGER NOT NULL,
        spool_id TEXT,
        received_at INTEGER NOT NULL,
        embargo_until INTEGER,
        date_problem TEXT,
        signed_by TEXT,
        sealed BLOB NOT NULL,
        PRIMARY KEY (advisory, revision)
      ) WITHOUT ROWID;

      -- What changed an advisory, when and on whose word: kept for good.
      CREATE TABLE advisory_events (
        id INTEGER PRIMARY KEY,
        advisory INTEGER NOT NULL REFERENCES advisories (id),
        at INTEGER NOT NULL,
        event TEXT NOT NULL,
        detail TEXT,
        actor TEXT NOT NULL
      );
      CREATE INDEX advisory_events_by_advisory ON advisory_events (advisory, at);

      -- The audit trail: who was sent which revision, encrypted to which key, and what became of it. Never purged with
      -- the queue; outbound_id links a row to its queue row while that exists.
      CREATE TABLE advisory_deliveries (
        id INTEGER PRIMARY KEY,
        advisory INTEGER NOT NULL REFERENCES advisories (id),
        revision INTEGER NOT NULL,
        address TEXT NOT NULL,
        organisation TEXT,
        fingerprint TEXT,
        encrypted_to TEXT,
        cause TEXT NOT NULL CHECK (cause IN ('post', 'catch-up', 'resend')),
        outbound_id INTEGER,
        state TEXT NOT NULL CHECK (state IN ('queued', 'deferred', 'delivered', 'failed', 'withheld')),
        detail TEXT,
        queued_at INTEGER,
        delivered_at INTEGER,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX advisory_deliveries_by_advisory ON advisory_deliveries (advisory, revision, address);
      CREATE INDEX advisory_deliveries_outbound ON advisory_deliveries (outbound_id) WHERE outbound_id IS NOT NULL;
    `,
  },
];
