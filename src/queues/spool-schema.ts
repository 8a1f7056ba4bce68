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
  {
    // The raw bytes move to a table of their own. SQLite rewrites a whole row on every UPDATE, so each state change
    // (claim, final state) rewrote the message itself, 25 MiB for a big post, with an fsync: memory, time and WAL.
    // The view spool keeps the old shape (same columns, same order) for admins' SQL and for reading and writing
    // rows directly; the spool module itself uses the two tables.
    id: 'spool-002-raw-apart',
    sql: `
      CREATE TABLE spool_raw (
        id TEXT PRIMARY KEY,
        raw BLOB NOT NULL
      );
      INSERT INTO spool_raw (id, raw) SELECT id, raw FROM spool;
      ALTER TABLE spool RENAME TO spool_rows;
      ALTER TABLE spool_rows DROP COLUMN raw;
      CREATE VIEW spool AS
        SELECT r.id, r.received_at, r.mail_from, r.rcpt_to, r.remote_address, r.helo, r.size, b.raw, r.state, r.attempts,
               r.list, r.outcome, r.reason, r.updated_at
        FROM spool_rows AS r JOIN spool_raw AS b ON b.id = r.id;
      CREATE TRIGGER spool_insert INSTEAD OF INSERT ON spool BEGIN
        INSERT INTO spool_rows (id, received_at, mail_from, rcpt_to, remote_address, helo, size, state, attempts, list, outcome, reason, updated_at)
        VALUES (NEW.id, NEW.received_at, NEW.mail_from, NEW.rcpt_to, NEW.remote_address, NEW.helo, NEW.size,
                COALESCE(NEW.state, 'queued'), COALESCE(NEW.attempts, 0), NEW.list, NEW.outcome, NEW.reason, NEW.updated_at);
        INSERT INTO spool_raw (id, raw) VALUES (NEW.id, NEW.raw);
      END;
      CREATE TRIGGER spool_update INSTEAD OF UPDATE ON spool BEGIN
        UPDATE spool_rows SET id = NEW.id, received_at = NEW.received_at, mail_from = NEW.mail_from, rcpt_to = NEW.rcpt_to,
          remote_address = NEW.remote_address, helo = NEW.helo, size = NEW.size, state = NEW.state, attempts = NEW.attempts,
          list = NEW.list, outcome = NEW.outcome, reason = NEW.reason, updated_at = NEW.updated_at
        WHERE id = OLD.id;
        UPDATE spool_raw SET id = NEW.id, raw = NEW.raw WHERE id = OLD.id AND (NEW.id IS NOT OLD.id OR NEW.raw IS NOT OLD.raw);
      END;
      CREATE TRIGGER spool_delete INSTEAD OF DELETE ON spool BEGIN
        DELETE FROM spool_raw WHERE id = OLD.id;
        DELETE FROM spool_rows WHERE id = OLD.id;
      END;
    `,
  },
  {
    // Fair service across sources. source = client address and envelope sender; turn = the round in which the row
    // is served (a source's rows get consecutive turns, a source with nothing waiting starts at the current round),
    // so one source's backlog cannot delay another's. source_class: 'poster' (the envelope sender is a registered
    // poster of a target list: served first within a turn, a hint only), 'bounce' (null sender), 'other'.
    id: 'spool-003-fair-turns',
    sql: `
      ALTER TABLE spool_rows ADD COLUMN source TEXT NOT NULL DEFAULT '';
      ALTER TABLE spool_rows ADD COLUMN source_class TEXT NOT NULL DEFAULT 'other';
      ALTER TABLE spool_rows ADD COLUMN turn INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX spool_turns ON spool_rows(state, turn, source_class <> 'poster', received_at, id);
      CREATE INDEX spool_unfinished_sources ON spool_rows(source, turn) WHERE state IN ('queued', 'processing');
      CREATE INDEX spool_unfinished_addresses ON spool_rows(remote_address) WHERE state IN ('queued', 'processing');
    `,
  },
];
