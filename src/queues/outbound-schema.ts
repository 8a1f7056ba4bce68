// Tables of the outbound queue (one row per recipient; encrypted lists keep only ciphertext here) and of member bounce scores.
import type { Migration } from '../store/migrations.ts';

export const outboundMigrations: Migration[] = [
  {
    id: 'outbound-001-create',
    sql: `
      -- The part of a fan-out that every copy shares (for encrypted lists: the armored SEIPD payload).
      -- Deleted as soon as no row needs it any more: sent rows let go of it, dead letters keep it for a retry.
      CREATE TABLE outbound_payload (
        id INTEGER PRIMARY KEY,
        created_at INTEGER NOT NULL,
        body BLOB NOT NULL
      );
      -- A copy is head || payload.body || tail; head carries the recipient's own session-key packet.
      -- The envelope sender is not stored: it is the VERP address computed from the row id and the server secret.
      CREATE TABLE outbound (
        id INTEGER PRIMARY KEY,
        spool_id TEXT,
        list TEXT NOT NULL,
        recipient TEXT NOT NULL,
        payload_id INTEGER REFERENCES outbound_payload(id),
        head BLOB NOT NULL,
        tail BLOB NOT NULL DEFAULT x'',
        message_id TEXT,
        -- queued -> sending -> sent | deferred (due again at next_attempt_at) | failed | expired | suspended
        state TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_attempt_at INTEGER,
        -- Set by an admin's retry: the maximum age counts from here instead of created_at.
        retried_at INTEGER,
        last_reply TEXT
      );
      CREATE INDEX outbound_due ON outbound(state, next_attempt_at);
      CREATE INDEX outbound_payload_ref ON outbound(payload_id);
      CREATE INDEX outbound_member ON outbound(list, recipient);

      -- One row per (list, member address) that ever bounced. The score decays exponentially from scored_at.
      CREATE TABLE member_bounces (
        list TEXT NOT NULL,
        address TEXT NOT NULL,
        score REAL NOT NULL DEFAULT 0,
        scored_at INTEGER NOT NULL,
        bounces_total INTEGER NOT NULL DEFAULT 0,
        last_bounce_at INTEGER,
        last_reason TEXT,
        -- Non-null: delivery to this member on this list is suspended until an admin resets it.
        suspended_at INTEGER,
        -- The queue row of the last counted bounce: one copy counts once, however many reports come back for it.
        last_row_id INTEGER,
        PRIMARY KEY (list, address)
      );
    `,
  },
  {
    id: 'outbound-002-counted-bounces',
    sql: `
      -- Every bounce that raised a score, by the queue row its VERP token names: a token counts once, ever (return
      -- paths cross every relay in clear, so anyone who saw one can send forged reports for it as often as they like).
      CREATE TABLE counted_bounces (
        row_id INTEGER PRIMARY KEY,
        list TEXT NOT NULL,
        address TEXT NOT NULL,
        -- The post the bounced copy carried: a suspension needs bounces for two different posts.
        spool_id TEXT,
        counted_at INTEGER NOT NULL,
        -- Set when an admin re-enables the member: the bounce no longer counts towards a suspension, its token still never counts again.
        cleared_at INTEGER
      );
      CREATE INDEX counted_bounces_member ON counted_bounces(list, address, counted_at);
    `,
  },
];
