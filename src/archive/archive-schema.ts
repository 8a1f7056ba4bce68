// Tables of the archive: messages (encrypted for private lists), threads, full-text search, embargo releases.
import type { Migration } from '../store/migrations.ts';

export const archiveMigrations: Migration[] = [
  {
    id: 'archive-001-entries',
    sql: `
      -- One row per archived message. Private rows keep only what indexes need in clear (list, arrival,
      -- thread, an opaque hash of the Message-ID); everything readable lives in the OpenPGP blob.
      CREATE TABLE archive_entries (
        id INTEGER PRIMARY KEY,
        list TEXT NOT NULL,
        visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
        message_key TEXT NOT NULL,
        thread_id INTEGER NOT NULL DEFAULT 0,
        received_at INTEGER NOT NULL,
        month TEXT NOT NULL,
        size INTEGER NOT NULL,
        spool_id TEXT,
        encrypted INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
        message BLOB NOT NULL,
        message_id TEXT,
        sent_at INTEGER,
        sender_name TEXT,
        sender_address TEXT,
        subject TEXT,
        attachment_count INTEGER NOT NULL DEFAULT 0,
        release_at INTEGER,
        release_to TEXT,
        released_at INTEGER,
        released_entry_id INTEGER,
        -- 'pending' after a release that is to be mailed, 'done' once handed over; survives restarts.
        mail_state TEXT CHECK (mail_state IN ('pending', 'done')),
        UNIQUE (list, message_key),
        CHECK (visibility = 'public' OR (encrypted = 1 AND subject IS NULL AND sender_address IS NULL AND message_id IS NULL))
      );
      CREATE INDEX archive_entries_month ON archive_entries (list, month, received_at);
      CREATE INDEX archive_entries_thread ON archive_entries (thread_id, received_at);
      CREATE INDEX archive_entries_recent ON archive_entries (list, received_at);
      CREATE INDEX archive_entries_due ON archive_entries (release_at) WHERE release_at IS NOT NULL AND released_at IS NULL;
      CREATE INDEX archive_entries_mail ON archive_entries (mail_state) WHERE mail_state = 'pending';

      -- Hashed In-Reply-To/References keys, so replies that arrive before their parent still join its thread.
      CREATE TABLE archive_references (
        entry_id INTEGER NOT NULL REFERENCES archive_entries (id) ON DELETE CASCADE,
        ref_key TEXT NOT NULL,
        PRIMARY KEY (entry_id, ref_key)
      ) WITHOUT ROWID;
      CREATE INDEX archive_references_key ON archive_references (ref_key);

      -- Public entries only: a contentless index (the text is already in the message) keyed by entry id.
      CREATE VIRTUAL TABLE archive_search USING fts5 (
        subject, sender, body,
        content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'
      );
    `,
  },
  {
    id: 'archive-002-search-snippets',
    sql: `
      -- The search index keeps its text now, so results can show FTS5 snippet()s (a contentless index cannot).
      -- Only public entries are indexed, so nothing private is stored in clear. Entries archived before this
      -- migration are indexed again from their messages at the next start (indexUnsearchedPublicEntries).
      DROP TABLE archive_search;
      CREATE VIRTUAL TABLE archive_search USING fts5 (
        subject, sender, body,
        tokenize = 'unicode61 remove_diacritics 2'
      );
    `,
  },
];
