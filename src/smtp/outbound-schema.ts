// Tables of the outbound queue: one row per recipient; encrypted lists keep only ciphertext here.
import type { Migration } from '../store/migrations.ts';

export const outboundMigrations: Migration[] = [
  {
    id: 'outbound-001-create',
    sql: `
      -- The part of a fan-out that every copy shares (for encrypted lists: the armored SEIPD payload).
      CREATE TABLE outbound_payload (
        id INTEGER PRIMARY KEY,
        created_at INTEGER NOT NULL,
        body BLOB NOT NULL
      );
      -- A copy is head || payload.body || tail; head carries the recipient's own session-key packet.
      CREATE TABLE outbound (
        id INTEGER PRIMARY KEY,
        spool_id TEXT,
        list TEXT NOT NULL,
        recipient TEXT NOT NULL,
        envelope_from TEXT NOT NULL,
        payload_id INTEGER REFERENCES outbound_payload(id),
        head BLOB NOT NULL,
        tail BLOB NOT NULL DEFAULT x'',
        message_id TEXT,
        -- queued -> sending -> sent | deferred -> ... | failed | expired | suspended
        state TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_reply TEXT
      );
      CREATE INDEX outbound_due ON outbound(state, next_attempt_at);
      CREATE INDEX outbound_payload_ref ON outbound(payload_id);
    `,
  },
];
