// Owner of the advisory tables: every SQL statement on advisories, their revisions, events and audit trail.
import type { Db } from '../store/database.ts';
import { statement } from '../store/statements.ts';

export type AdvisoryState = 'embargoed' | 'released' | 'cancelled' | 'no-date';
export type DeliveryState = 'queued' | 'deferred' | 'delivered' | 'failed' | 'withheld';
export type DeliveryCause = 'post' | 'catch-up' | 'resend';

export interface Advisory {
  rowId: number;
  list: string;
  advisoryId: string;
  state: AdvisoryState;
  embargoUntil: Date | null;
  revision: number;
  publishedRevision: number | null;
  publishedTo: string | null;
  publishedMessageId: string | null;
  publishedEntryId: number | null;
  releasedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

interface AdvisoryRecord {
  id: number;
  list: string;
  advisory_id: string;
  state: AdvisoryState;
  embargo_until: number | null;
  revision: number;
  published_revision: number | null;
  published_to: string | null;
  published_message_id: string | null;
  published_entry_id: number | null;
  released_at: number | null;
  created_at: number;
  updated_at: number;
}

const dateOf = (value: number | null): Date | null => (value === null ? null : new Date(value));

function toAdvisory(record: AdvisoryRecord): Advisory {
  return {
    rowId: record.id,
    list: record.list,
    advisoryId: record.advisory_id,
    state: record.state,
    embargoUntil: dateOf(record.embargo_until),
    revision: record.revision,
    publishedRevision: record.published_revision,
    publishedTo: record.published_to,
    publishedMessageId: record.published_message_id,
    publishedEntryId: record.published_entry_id,
    releasedAt: dateOf(record.released_at),
    createdAt: new Date(record.created_at),
    updatedAt: new Date(record.updated_at),
  };
}

/** Advisory ids compare without regard to case: XSA-1 and xsa-1 are one advisory. */
export function normalizeAdvisoryId(advisoryId: string): string {
  return advisoryId.trim().toUpperCase();
}

export function findAdvisory(db: Db, list: string, advisoryId: string): Advisory | null {
  const record = statement(db, 'SELECT * FROM advisories WHERE list = ? AND advisory_id = ?').get(list, normalizeAdvisoryId(advisoryId)) as
    | AdvisoryRecord
    | undefined;
  return record ? toAdvisory(record) : null;
}

/** Every list's advisories with this id (an id may exist on several announce lists). */
export function advisoriesWithId(db: Db, advisoryId: string): Advisory[] {
  return (statement(db, 'SELECT * FROM advisories WHERE advisory_id = ? ORDER BY list').all(normalizeAdvisoryId(advisoryId)) as AdvisoryRecord[]).map(
    toAdvisory,
  );
}

export function listAdvisories(db: Db, options: { list?: string; states?: readonly AdvisoryState[] } = {}): Advisory[] {
  const records = statement(db, 'SELECT * FROM advisories ORDER BY created_at, id').all() as AdvisoryRecord[];
  return records
    .map(toAdvisory)
    .filter((advisory) => (options.list === undefined || advisory.list === options.list) && (!options.states || options.states.includes(advisory.state)));
}

/** Advisories whose newest revision must be published now: an embargo that ended, or a new revision of a released one. */
export function dueForRelease(db: Db, now: Date): Advisory[] {
  const records = statement(
    db,
    `SELECT * FROM advisories
     WHERE (state = 'embargoed' AND embargo_until <= ?) OR (state = 'released' AND (published_revision IS NULL OR published_revision < revision))
     ORDER BY embargo_until, id`,
  ).all(now.getTime()) as AdvisoryRecord[];
  return records.map(toAdvisory);
}

export function pendingEmbargoCount(db: Db): number {
  return (statement(db, "SELECT count(*) AS n FROM advisories WHERE state = 'embargoed'").get() as { n: number }).n;
}

/** The published advisory with this id on a public list, for its stable URL. */
export function publishedOn(db: Db, publicList: string, advisoryId: string): Advisory | null {
  const record = statement(
    db,
    'SELECT * FROM advisories WHERE published_to = ? AND advisory_id = ? AND published_message_id IS NOT NULL ORDER BY released_at DESC LIMIT 1',
  ).get(publicList, normalizeAdvisoryId(advisoryId)) as AdvisoryRecord | undefined;
  return record ? toAdvisory(record) : null;
}

// ─── Revisions ─────────────────────────────────────────────────────────────────────────────────────

/** What a revision says about the embargo date: a date, none, or several different ones (nothing scheduled). */
export type RevisionDate = { kind: 'date'; at: Date } | { kind: 'none' } | { kind: 'ambiguous'; detail: string };

export interface NewRevision {
  list: string;
  advisoryId: string;
  spoolId: string | null;
  receivedAt: Date;
  date: RevisionDate;
  signedBy: string | null;
  /** The revision's content, encrypted to the list key. */
  sealed: Buffer;
  now: Date;
}

export interface RecordedRevision {
  advisory: Advisory;
  revision: number;
  /** The state and date before this revision, for the confirmation to the posters. */
  previous: { state: AdvisoryState; embargoUntil: Date | null } | null;
}

/**
 * Records a revision and applies its date, in the caller's transaction. A date replaces the earlier one (later
 * postpones, earlier advances); no date keeps it; several different dates unschedule the advisory, because the
 * server cannot tell which one the team meant and an early release cannot be taken back.
 */
export function recordRevision(db: Db, input: NewRevision): RecordedRevision {
  return db.transaction((): RecordedRevision => {
    const advisoryId = normalizeAdvisoryId(input.advisoryId);
    const now = input.now.getTime();
    let existing = findAdvisory(db, input.list, advisoryId);
    const previous = existing ? { state: existing.state, embargoUntil: existing.embargoUntil } : null;
    if (!existing) {
      statement(db, `INSERT INTO advisories (list, advisory_id, state, revision, created_at, updated_at) VALUES (?, ?, 'no-date', 0, ?, ?)`).run(
        input.list,
        advisoryId,
        now,
        now,
      );
      existing = findAdvisory(db, input.list, advisoryId)!;
    }
    const revision = existing.revision + 1;
    statement(
      db,
      `INSERT INTO advisory_revisions (advisory, revision, spool_id, received_at, embargo_until, date_problem, signed_by, sealed)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      existing.rowId,
      revision,
      input.spoolId,
      input.receivedAt.getTime(),
      input.date.kind === 'date' ? input.date.at.getTime() : null,
      input.date.kind === 'ambiguous' ? input.date.detail : null,
      input.signedBy,
      input.sealed,
    );
    let state = existing.state;
    let embargoUntil = existing.embargoUntil?.getTime() ?? null;
    if (state !== 'released') {
      if (input.date.kind === 'date') {
        state = 'embargoed';
        embargoUntil = input.date.at.getTime();
      } else if (input.date.kind === 'ambiguous') {
        state = 'no-date';
        embargoUntil = null;
      }
    }
    statement(db, 'UPDATE advisories SET revision = ?, state = ?, embargo_until = ?, updated_at = ? WHERE id = ?').run(
      revision,
      state,
      embargoUntil,
      now,
      existing.rowId,
    );
    const event =
      input.date.kind === 'ambiguous' ? 'not-scheduled' : input.date.kind === 'date' && state === 'embargoed' ? 'scheduled' : 'revised';
    addEvent(db, existing.rowId, input.now, event, `revision ${revision}${embargoUntil ? `, embargo until ${new Date(embargoUntil).toISOString()}` : ''}${input.date.kind === 'ambiguous' ? `: ${input.date.detail}` : ''}`, input.signedBy ?? 'post');
    return { advisory: findAdvisory(db, input.list, advisoryId)!, revision, previous };
  })();
}

export interface Revision {
  advisoryRowId: number;
  revision: number;
  spoolId: string | null;
  receivedAt: Date;
  embargoUntil: Date | null;
  dateProblem: string | null;
  signedBy: string | null;
  sealed: Buffer;
}

interface RevisionRecord {
  advisory: number;
  revision: number;
  spool_id: string | null;
  received_at: number;
  embargo_until: number | null;
  date_problem: string | null;
  signed_by: string | null;
  sealed: Buffer;
}

function toRevision(record: RevisionRecord): Revision {
  return {
    advisoryRowId: record.advisory,
    revision: record.revision,
    spoolId: record.spool_id,
    receivedAt: new Date(record.received_at),
    embargoUntil: dateOf(record.embargo_until),
    dateProblem: record.date_problem,
    signedBy: record.signed_by,
    sealed: record.sealed,
  };
}

export function getRevision(db: Db, advisoryRowId: number, revision: number): Revision | null {
  const record = statement(db, 'SELECT * FROM advisory_revisions WHERE advisory = ? AND revision = ?').get(advisoryRowId, revision) as
    | RevisionRecord
    | undefined;
  return record ? toRevision(record) : null;
}

export function revisionsOf(db: Db, advisoryRowId: number): Revision[] {
  return (statement(db, 'SELECT * FROM advisory_revisions WHERE advisory = ? ORDER BY revision').all(advisoryRowId) as RevisionRecord[]).map(toRevision);
}

/** The revision a spooled post became (the fan-out's audit rows name it). */
export function revisionOfSpool(db: Db, advisoryRowId: number, spoolId: string): number | null {
  const row = statement(db, 'SELECT revision FROM advisory_revisions WHERE advisory = ? AND spool_id = ?').get(advisoryRowId, spoolId) as
    | { revision: number }
    | undefined;
  return row?.revision ?? null;
}

// ─── Changes by command, and publication ───────────────────────────────────────────────────────────

export function addEvent(db: Db, advisoryRowId: number, at: Date, event: string, detail: string | null, actor: string): void {
  statement(db, 'INSERT INTO advisory_events (advisory, at, event, detail, actor) VALUES (?, ?, ?, ?, ?)').run(advisoryRowId, at.getTime(), event, detail, actor);
}

export interface AdvisoryEvent {
  at: Date;
  event: string;
  detail: string | null;
  actor: string;
}

export function eventsOf(db: Db, advisoryRowId: number): AdvisoryEvent[] {
  return (
    statement(db, 'SELECT at, event, detail, actor FROM advisory_events WHERE advisory = ? ORDER BY at, id').all(advisoryRowId) as Array<{
      at: number;
      event: string;
      detail: string | null;
      actor: string;
    }>
  ).map((row) => ({ at: new Date(row.at), event: row.event, detail: row.detail, actor: row.actor }));
}

/** Sets state and embargo end; returns false when the row changed since the caller read it (another writer won). */
export function setSchedule(
  db: Db,
  advisory: Advisory,
  change: { state: AdvisoryState; embargoUntil: Date | null },
  now: Date,
): boolean {
  const result = statement(
    db,
    'UPDATE advisories SET state = ?, embargo_until = ?, updated_at = ? WHERE id = ? AND state = ? AND revision = ? AND embargo_until IS ?',
  ).run(change.state, change.embargoUntil?.getTime() ?? null, now.getTime(), advisory.rowId, advisory.state, advisory.revision, advisory.embargoUntil?.getTime() ?? null);
  return result.changes === 1;
}

/**
 * Marks the advisory's revision published, only if it is still the row the release pass read: two passes (or a pass
 * and a command) never publish one revision twice.
 */
export function markPublished(
  db: Db,
  advisory: Advisory,
  publication: { revision: number; publishedTo: string | null; messageId: string | null; entryId: number | null },
  now: Date,
): boolean {
  const result = statement(
    db,
    `UPDATE advisories SET state = 'released', published_revision = ?, published_to = ?, published_message_id = ?, published_entry_id = ?,
       released_at = coalesce(released_at, ?), updated_at = ?
     WHERE id = ? AND state = ? AND revision = ? AND published_revision IS ?`,
  ).run(
    publication.revision,
    publication.publishedTo,
    publication.messageId,
    publication.entryId,
    now.getTime(),
    now.getTime(),
    advisory.rowId,
    advisory.state,
    publication.revision,
    advisory.publishedRevision,
  );
  return result.changes === 1;
}

// ─── Audit trail ───────────────────────────────────────────────────────────────────────────────────

export interface DeliveryRecord {
  advisoryRowId: number;
  revision: number;
  address: string;
  organisation: string | null;
  fingerprint: string | null;
  encryptedTo: string | null;
  cause: DeliveryCause;
  outboundId: number | null;
  state: DeliveryState;
  detail: string | null;
  queuedAt: Date | null;
}

export function recordDelivery(db: Db, record: DeliveryRecord, now: Date): void {
  statement(
    db,
    `INSERT INTO advisory_deliveries (advisory, revision, address, organisation, fingerprint, encrypted_to, cause, outbound_id, state, detail, queued_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    record.advisoryRowId,
    record.revision,
    record.address,
    record.organisation,
    record.fingerprint,
    record.encryptedTo,
    record.cause,
    record.outboundId,
    record.state,
    record.detail,
    record.queuedAt?.getTime() ?? null,
    now.getTime(),
  );
}

/** The outcome of a queue row, copied into its audit row (same transaction as the queue's own update). */
export function recordDeliveryOutcome(db: Db, outboundId: number, outcome: { state: DeliveryState; detail: string; at: number }): void {
  statement(
    db,
    `UPDATE advisory_deliveries SET state = ?, detail = ?, delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END, updated_at = ?
     WHERE outbound_id = ?`,
  ).run(outcome.state, outcome.detail, outcome.state, outcome.at, outcome.at, outboundId);
}

export interface AuditEntry {
  revision: number;
  address: string;
  organisation: string | null;
  fingerprint: string | null;
  encryptedTo: string | null;
  cause: DeliveryCause;
  state: DeliveryState;
  detail: string | null;
  queuedAt: Date | null;
  deliveredAt: Date | null;
}

export function auditOf(db: Db, advisoryRowId: number): AuditEntry[] {
  return (
    statement(
      db,
      `SELECT revision, address, organisation, fingerprint, encrypted_to, cause, state, detail, queued_at, delivered_at
       FROM advisory_deliveries WHERE advisory = ? ORDER BY revision, address, id`,
    ).all(advisoryRowId) as Array<{
      revision: number;
      address: string;
      organisation: string | null;
      fingerprint: string | null;
      encrypted_to: string | null;
      cause: DeliveryCause;
      state: DeliveryState;
      detail: string | null;
      queued_at: number | null;
      delivered_at: number | null;
    }>
  ).map((row) => ({
    revision: row.revision,
    address: row.address,
    organisation: row.organisation,
    fingerprint: row.fingerprint,
    encryptedTo: row.encrypted_to,
    cause: row.cause,
    state: row.state,
    detail: row.detail,
    queuedAt: dateOf(row.queued_at),
    deliveredAt: dateOf(row.delivered_at),
  }));
}

/** Per advisory: how many members a copy was sent to, delivered to, and withheld from (newest revision). */
export function deliveryCounts(db: Db, advisoryRowId: number, revision: number): { recipients: number; delivered: number; withheld: number } {
  const row = statement(
    db,
    `SELECT count(DISTINCT address) AS recipients,
            count(DISTINCT CASE WHEN state = 'delivered' THEN address END) AS delivered,
            count(DISTINCT CASE WHEN state = 'withheld' AND address NOT IN (
              SELECT address FROM advisory_deliveries WHERE advisory = ? AND revision = ? AND state <> 'withheld') THEN address END) AS withheld
     FROM advisory_deliveries WHERE advisory = ? AND revision = ?`,
  ).get(advisoryRowId, revision, advisoryRowId, revision) as { recipients: number; delivered: number; withheld: number };
  return row;
}

/** Addresses that have (or are being sent) this revision, and those recorded as withheld from it. */
export function revisionRecipients(db: Db, advisoryRowId: number, revision: number): { sent: Set<string>; withheld: Set<string> } {
  const rows = statement(db, 'SELECT address, state FROM advisory_deliveries WHERE advisory = ? AND revision = ?').all(advisoryRowId, revision) as Array<{
    address: string;
    state: DeliveryState;
  }>;
  const sent = new Set<string>();
  const withheld = new Set<string>();
  for (const row of rows) {
    if (row.state === 'withheld') withheld.add(row.address);
    else if (row.state !== 'failed') sent.add(row.address);
  }
  return { sent, withheld };
}
