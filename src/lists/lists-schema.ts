// Tables of the list engine: moderation decisions, public-list subscribers, replay protection, per-sender post counts.
import type { Migration } from '../store/migrations.ts';

export const listMigrations: Migration[] = [
  {
    id: 'lists-001-create',
    sql: `
      -- A held post: its raw (still encrypted) bytes stay in the spool row; this row carries the decision.
      CREATE TABLE moderation (
        spool_id TEXT PRIMARY KEY,
        list TEXT NOT NULL,
        held_at INTEGER NOT NULL,
        reason TEXT NOT NULL,
        -- Sender and signer as verified, for the moderators' overview (never the subject or body).
        sender TEXT,
        -- pending -> approved | rejected; the worker acts on a decision and then sets done_at.
        decision TEXT NOT NULL DEFAULT 'pending',
        decided_by TEXT,
        decided_at INTEGER,
        reject_reason TEXT,
        done_at INTEGER
      );
      CREATE INDEX moderation_list ON moderation(list, decision);

      -- Public lists: people who joined by mail (config members are not in here).
      CREATE TABLE subscribers (
        list TEXT NOT NULL,
        address TEXT NOT NULL,
        subscribed_at INTEGER NOT NULL,
        PRIMARY KEY (list, address)
      );

      -- Double opt-in: a token mailed to the address; replying with it confirms the action.
      CREATE TABLE subscription_tokens (
        token TEXT PRIMARY KEY,
        list TEXT NOT NULL,
        address TEXT NOT NULL,
        action TEXT NOT NULL,            -- subscribe | unsubscribe
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX subscription_tokens_address ON subscription_tokens(list, address);

      -- Replay protection: signatures and Message-IDs already taken by a list.
      CREATE TABLE seen_posts (
        list TEXT NOT NULL,
        kind TEXT NOT NULL,              -- raw | signature | message-id
        digest TEXT NOT NULL,            -- sha256 hex, so no Message-ID or signer is kept in clear
        spool_id TEXT NOT NULL,
        seen_at INTEGER NOT NULL,
        PRIMARY KEY (list, kind, digest)
      );

      -- Public lists: one row per accepted post, for the per-sender hourly limit.
      CREATE TABLE post_counts (
        list TEXT NOT NULL,
        sender_digest TEXT NOT NULL,
        posted_at INTEGER NOT NULL
      );
      CREATE INDEX post_counts_sender ON post_counts(list, sender_digest, posted_at);
    `,
  },
  {
    id: 'lists-002-accepted-signatures',
    sql: `
      -- A signature is accepted once, whichever list (or command address) it reaches: invariant 7. Keyed by the
      -- digest of the signature's protected part, so wrapping it differently (signed-only, then encrypted) is the same.
      CREATE TABLE accepted_signatures (
        digest TEXT PRIMARY KEY,
        -- The spool row that used it: the same SMTP transaction addressed to several lists counts once.
        spool_id TEXT NOT NULL,
        list TEXT NOT NULL,
        accepted_at INTEGER NOT NULL
      );
    `,
  },
  {
    id: 'lists-003-notice-counts',
    sql: `
      -- Automatic mail a list sent, for its limits (src/lists/reply-budget.ts): replies to one address per day, refusal
      -- notices to its admins per hour. The address is kept as a digest: the table only ever needs to count it.
      CREATE TABLE notice_counts (
        list TEXT NOT NULL,
        kind TEXT NOT NULL,
        address_digest TEXT NOT NULL,
        sent_at INTEGER NOT NULL
      );
      CREATE INDEX notice_counts_address ON notice_counts(list, kind, address_digest, sent_at);
    `,
  },
];
