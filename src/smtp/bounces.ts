// Bounces returned to NAME-bounces+TOKEN@: reads DSNs (RFC 3464) and plain bounces, keeps decaying member scores, suspends past a threshold.
import type { Db } from '../store/database.ts';
import { statement } from '../store/statements.ts';
import { parseVerpToken } from './verp.ts';

export const defaultBounceThreshold = 5;
export const defaultBounceHalfLifeDays = 7;

/** A hard failure counts fully; a plain message we cannot classify counts half, in case it was something else. */
const hardWeight = 1;
const unknownWeight = 0.5;

export type BounceKind = 'dsn' | 'plain';

export type BounceOutcome =
  /** Not a bounce we can attribute: forged or malformed token, row purged, or token of another list. Drop it. */
  | { action: 'discard'; reason: 'bad-token' | 'unknown-row' | 'wrong-list' }
  /** Attributed, but it does not count: an auto-reply, a delay warning, a success notice, or a repeat for the same copy. */
  /** `duplicate`: this token counted before; `same-day`: the member's score already rose within the last day. */
  | { action: 'ignore'; list: string; address: string; rowId: number; reason: 'auto-reply' | 'delay-warning' | 'not-a-failure' | 'duplicate' | 'same-day' }
  | {
      action: 'scored';
      list: string;
      address: string;
      rowId: number;
      kind: BounceKind;
      /** What this bounce added. */
      weight: number;
      /** The member's decayed score after this bounce. */
      score: number;
      threshold: number;
      /** Delivery to this member on this list is suspended (now or already before). */
      suspended: boolean;
      /** True once, on the bounce that crossed the threshold: the caller tells the list's admins. */
      notifyAdmins: boolean;
      /** DSN Status (e.g. 5.1.1) or a status code found in a plain bounce. */
      status?: string;
      /** The remote server's reply, as reported in the bounce (for the admins' notice; no message content). */
      diagnostic?: string;
    };

export interface BounceInput {
  list: string;
  token: string;
  raw: Buffer;
  secret: Buffer;
  /** Milliseconds since the epoch. */
  now?: number;
  threshold?: number;
  halfLifeDays?: number;
}

export interface BounceRecord {
  list: string;
  address: string;
  /** Decayed to `now`. */
  score: number;
  bouncesTotal: number;
  lastBounceAt: number | null;
  lastReason: string | null;
  suspendedAt: number | null;
}

interface BounceRecordRow {
  list: string;
  address: string;
  score: number;
  scored_at: number;
  bounces_total: number;
  last_bounce_at: number | null;
  last_reason: string | null;
  suspended_at: number | null;
  last_row_id: number | null;
}

/**
 * What a bounce means, and the write that records it. `record` is null when nothing is to be written (discarded,
 * ignored); otherwise the caller runs it inside its own transaction, together with whatever it does because of the
 * outcome (the pipeline: the admins' notice and the spool row's new state), so both land or neither does.
 */
export interface BounceAssessment {
  outcome: BounceOutcome;
  record: (() => void) | null;
}

/**
 * Matches a bounce to the queue row its VERP token names and reads it; writes nothing. Nothing may write this
 * member's score between this call and running `record` (the pipeline handles one message at a time).
 */
export function assessBounce(db: Db, input: BounceInput): BounceAssessment {
  const now = input.now ?? Date.now();
  const threshold = input.threshold ?? defaultBounceThreshold;
  const halfLifeMs = (input.halfLifeDays ?? defaultBounceHalfLifeDays) * 86_400_000;

  const rowId = parseVerpToken(input.secret, input.token);
  if (rowId === null) return { outcome: { action: 'discard', reason: 'bad-token' }, record: null };
  const row = db.prepare('SELECT list, recipient, spool_id FROM outbound WHERE id = ?').get(rowId) as { list: string; recipient: string; spool_id: string | null } | undefined;
  if (!row) return { outcome: { action: 'discard', reason: 'unknown-row' }, record: null };
  if (row.list.toLowerCase() !== input.list.toLowerCase()) return { outcome: { action: 'discard', reason: 'wrong-list' }, record: null };

  const list = row.list;
  const address = row.recipient.toLowerCase();
  const reading = classifyBounce(input.raw);
  if (reading.verdict !== 'failure' && reading.verdict !== 'unknown') {
    return { outcome: { action: 'ignore', list, address, rowId, reason: reading.verdict }, record: null };
  }

  const weight = reading.verdict === 'failure' ? hardWeight : unknownWeight;
  const reason = [reading.status, reading.diagnostic].filter(Boolean).join(' ') || `${reading.kind} bounce`;
  const scoring = { list, address, rowId, spoolId: row.spool_id, weight, now, threshold, halfLifeMs };
  const next = nextScore(db, scoring);
  // One copy counts once, ever, however many reports come back for it (a DSN and then a plain notice,
  // retransmissions, forgeries by someone who saw the return path); and a member's score rises once a day at most.
  if (next === 'duplicate' || next === 'same-day') return { outcome: { action: 'ignore', list, address, rowId, reason: next }, record: null };
  return {
    outcome: {
      action: 'scored',
      list,
      address,
      rowId,
      kind: reading.kind,
      weight,
      score: next.score,
      threshold,
      suspended: next.alreadySuspended || next.suspendNow,
      notifyAdmins: next.suspendNow,
      ...(reading.status ? { status: reading.status } : {}),
      ...(reading.diagnostic ? { diagnostic: reading.diagnostic } : {}),
    },
    record: () => recordBounce(db, scoring, clip(reason, 500)),
  };
}

/** Matches a bounce to the queue row its VERP token names, reads it, and updates that member's score at once. */
export function handleBounce(db: Db, input: BounceInput): BounceOutcome {
  const { outcome, record } = assessBounce(db, input);
  if (record) db.transaction(record)();
  return outcome;
}

interface Scoring {
  list: string;
  address: string;
  rowId: number;
  /** The post the bounced copy carried (null for notices, which count as a post of their own). */
  spoolId: string | null;
  weight: number;
  now: number;
  threshold: number;
  halfLifeMs: number;
}

/** Like Mailman: one bounce a day raises a member's score, however many arrive. */
const scoreIntervalMs = 86_400_000;

/** A suspension needs bounces for at least this many different posts: one lost post is not a dead address. */
const minimumPostsForSuspension = 2;

/** The member's score after this bounce, or why the bounce does not count. */
function nextScore(db: Db, scoring: Scoring): { score: number; alreadySuspended: boolean; suspendNow: boolean } | 'duplicate' | 'same-day' {
  if (statement(db, 'SELECT 1 FROM counted_bounces WHERE row_id = ?').get(scoring.rowId)) return 'duplicate';
  const recent = statement(db, 'SELECT 1 FROM counted_bounces WHERE list = ? AND address = ? AND counted_at > ? AND cleared_at IS NULL LIMIT 1').get(
    scoring.list,
    scoring.address,
    scoring.now - scoreIntervalMs,
  );
  if (recent) return 'same-day';
  const existing = db.prepare('SELECT * FROM member_bounces WHERE list = ? AND address = ?').get(scoring.list, scoring.address) as BounceRecordRow | undefined;
  const previous = existing ? decay(existing.score, scoring.now - existing.scored_at, scoring.halfLifeMs) : 0;
  const score = previous + scoring.weight;
  const alreadySuspended = existing?.suspended_at != null;
  const { posts } = statement(
    db,
    `SELECT COUNT(DISTINCT coalesce(spool_id, 'row:' || row_id)) AS posts FROM counted_bounces
      WHERE list = ? AND address = ? AND cleared_at IS NULL AND coalesce(spool_id, 'row:' || row_id) != coalesce(?, 'row:' || ?)`,
  ).get(scoring.list, scoring.address, scoring.spoolId, scoring.rowId) as { posts: number };
  const enoughPosts = posts + 1 >= minimumPostsForSuspension;
  return { score, alreadySuspended, suspendNow: !alreadySuspended && score >= scoring.threshold && enoughPosts };
}

/** Writes the bounce: reads the record again, so a write run later than its assessment still adds to what is stored. */
function recordBounce(db: Db, scoring: Scoring, reason: string): void {
  const next = nextScore(db, scoring);
  if (next === 'duplicate' || next === 'same-day') return;
  const { list, address, rowId, now } = scoring;
  statement(db, 'INSERT INTO counted_bounces (row_id, list, address, spool_id, counted_at) VALUES (?, ?, ?, ?, ?)').run(rowId, list, address, scoring.spoolId, now);
  db.prepare(
    `INSERT INTO member_bounces (list, address, score, scored_at, bounces_total, last_bounce_at, last_reason, suspended_at, last_row_id)
     VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)
     ON CONFLICT (list, address) DO UPDATE SET
       score = excluded.score, scored_at = excluded.scored_at, bounces_total = bounces_total + 1,
       last_bounce_at = excluded.last_bounce_at, last_reason = excluded.last_reason,
       suspended_at = coalesce(member_bounces.suspended_at, excluded.suspended_at), last_row_id = excluded.last_row_id`,
  ).run(list, address, next.score, now, now, reason, next.suspendNow ? now : null, rowId);

  if (next.suspendNow) {
    db.prepare(
      `UPDATE outbound SET state = 'suspended', updated_at = ?,
         last_reply = 'not sent: delivery to this member is suspended after bounces'
       WHERE list = ? AND lower(recipient) = ? AND state IN ('queued', 'deferred')`,
    ).run(now, list, address);
  }
}

function decay(score: number, elapsedMs: number, halfLifeMs: number): number {
  // Whole hours only: bounces that arrive together (a burst after an outage) count in full against the threshold.
  const elapsedHours = Math.floor(elapsedMs / 3_600_000);
  if (elapsedHours <= 0 || halfLifeMs <= 0) return score;
  return score * Math.pow(0.5, (elapsedHours * 3_600_000) / halfLifeMs);
}

function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length)}…` : text;
}

/** Whether delivery of this list to this address is suspended after bounces. */
export function isSuspended(db: Db, list: string, address: string): boolean {
  const row = statement(db, 'SELECT suspended_at FROM member_bounces WHERE list = ? AND address = ?').get(list, address.toLowerCase()) as
    | { suspended_at: number | null }
    | undefined;
  return row?.suspended_at != null;
}

/**
 * An admin's re-enable: clears the member's score and suspension. With `requeue`, copies that were held back
 * while suspended become due again. Returns whether there was a record, whether it was suspended, and rows requeued.
 */
export function resetBounces(
  db: Db,
  list: string,
  address: string,
  options: { requeue?: boolean; now?: number } = {},
): { found: boolean; wasSuspended: boolean; requeued: number } {
  const now = options.now ?? Date.now();
  const lower = address.toLowerCase();
  return db.transaction(() => {
    const row = db.prepare('SELECT suspended_at FROM member_bounces WHERE list = ? AND address = ?').get(list, lower) as
      | { suspended_at: number | null }
      | undefined;
    db.prepare('DELETE FROM member_bounces WHERE list = ? AND address = ?').run(list, lower);
    // The bounces counted so far no longer count towards a suspension; their tokens still never count again.
    db.prepare('UPDATE counted_bounces SET cleared_at = ? WHERE list = ? AND address = ? AND cleared_at IS NULL').run(now, list, lower);
    const requeued = options.requeue
      ? db
          .prepare(
            `UPDATE outbound SET state = 'queued', next_attempt_at = ?, retried_at = ?, updated_at = ?
             WHERE list = ? AND lower(recipient) = ? AND state = 'suspended'`,
          )
          .run(now, now, now, list, lower).changes
      : 0;
    return { found: row !== undefined, wasSuspended: row?.suspended_at != null, requeued };
  })();
}

/** Every member with a bounce record, optionally for one list, scores decayed to `now`. */
export function listBounceRecords(db: Db, options: { list?: string; now?: number; halfLifeDays?: number } = {}): BounceRecord[] {
  const now = options.now ?? Date.now();
  const halfLifeMs = (options.halfLifeDays ?? defaultBounceHalfLifeDays) * 86_400_000;
  const rows = (
    options.list
      ? db.prepare('SELECT * FROM member_bounces WHERE list = ? ORDER BY list, address').all(options.list)
      : db.prepare('SELECT * FROM member_bounces ORDER BY list, address').all()
  ) as BounceRecordRow[];
  return rows.map((row) => ({
    list: row.list,
    address: row.address,
    score: decay(row.score, now - row.scored_at, halfLifeMs),
    bouncesTotal: row.bounces_total,
    lastBounceAt: row.last_bounce_at,
    lastReason: row.last_reason,
    suspendedAt: row.suspended_at,
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a bounce. Synchronous and bounded: bounces come from strangers' servers, so only the first part of a big
// message is looked at (the report part always comes before the returned original), with limits on depth and parts.

export type BounceVerdict = 'failure' | 'unknown' | 'delay-warning' | 'auto-reply' | 'not-a-failure';

export interface BounceReading {
  kind: BounceKind;
  verdict: BounceVerdict;
  status?: string;
  diagnostic?: string;
}

const maxInspectedBytes = 1 << 20;
const maxDepth = 6;
const maxParts = 64;

interface MimeEntity {
  headers: Map<string, string[]>;
  body: Buffer;
}

/** Classifies a message sent to a VERP address: an RFC 3464 report when it is one, otherwise a plain bounce by its text. */
export function classifyBounce(raw: Buffer): BounceReading {
  const message = parseEntity(raw.subarray(0, maxInspectedBytes));
  const report = findDeliveryStatus(message, 0, { parts: 0 });
  if (report) return readDeliveryStatus(report);
  return readPlainBounce(message);
}

function parseEntity(raw: Buffer): MimeEntity {
  const separator = findHeaderEnd(raw);
  const headerText = raw.subarray(0, separator.start).toString('latin1');
  const body = raw.subarray(separator.end);
  return { headers: parseHeaderFields(headerText), body };
}

function findHeaderEnd(raw: Buffer): { start: number; end: number } {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { start: crlf, end: crlf + 4 };
  if (lf >= 0) return { start: lf, end: lf + 2 };
  return { start: raw.length, end: raw.length };
}

/** Header-style fields (mail headers, DSN field groups): unfolded, names lower-cased, repeated names kept in order. */
function parseHeaderFields(text: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  const unfolded = text.replace(/\r?\n[ \t]+/g, ' ');
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const values = fields.get(name) ?? [];
    values.push(value);
    fields.set(name, values);
  }
  return fields;
}

function header(entity: MimeEntity, name: string): string {
  return entity.headers.get(name)?.[0] ?? '';
}

function contentType(entity: MimeEntity): { type: string; parameters: Map<string, string> } {
  const value = header(entity, 'content-type');
  const [typePart, ...rest] = value.split(';');
  const parameters = new Map<string, string>();
  for (const parameter of rest) {
    const equals = parameter.indexOf('=');
    if (equals <= 0) continue;
    const key = parameter.slice(0, equals).trim().toLowerCase();
    let parameterValue = parameter.slice(equals + 1).trim();
    if (parameterValue.startsWith('"') && parameterValue.endsWith('"')) parameterValue = parameterValue.slice(1, -1);
    parameters.set(key, parameterValue);
  }
  return { type: (typePart ?? '').trim().toLowerCase() || 'text/plain', parameters };
}

function multipartChildren(entity: MimeEntity): MimeEntity[] {
  const boundary = contentType(entity).parameters.get('boundary');
  if (!boundary) return [];
  const text = entity.body.toString('latin1');
  const delimiter = `--${boundary}`;
  const children: MimeEntity[] = [];
  const lines = text.split(/\r?\n/);
  let current: string[] | null = null;
  for (const line of lines) {
    const trimmed = line.trimEnd();
    if (trimmed === delimiter || trimmed === `${delimiter}--`) {
      if (current) children.push(parseEntity(Buffer.from(current.join('\r\n'), 'latin1')));
      if (trimmed.endsWith('--') && trimmed === `${delimiter}--`) {
        current = null;
        break;
      }
      current = [];
      if (children.length >= maxParts) break;
      continue;
    }
    current?.push(line);
  }
  if (current && current.length) children.push(parseEntity(Buffer.from(current.join('\r\n'), 'latin1')));
  return children;
}

function decodedBody(entity: MimeEntity): string {
  const encoding = header(entity, 'content-transfer-encoding').toLowerCase();
  if (encoding === 'base64') return Buffer.from(entity.body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') {
    const text = entity.body.toString('latin1').replace(/=\r?\n/g, '');
    return Buffer.from(text.replace(/=([0-9A-Fa-f]{2})/g, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
  }
  return entity.body.toString('utf8');
}

function findDeliveryStatus(entity: MimeEntity, depth: number, budget: { parts: number }): MimeEntity | null {
  if (depth > maxDepth || ++budget.parts > maxParts) return null;
  const { type } = contentType(entity);
  if (type === 'message/delivery-status' || type === 'message/global-delivery-status') return entity;
  if (!type.startsWith('multipart/')) return null;
  for (const child of multipartChildren(entity)) {
    // The returned original (message/rfc822) is not searched: a bounce of a bounce must not count twice.
    const found = findDeliveryStatus(child, depth + 1, budget);
    if (found) return found;
  }
  return null;
}

/** RFC 3464: a per-message field group, then one group per recipient with Action, Status and Diagnostic-Code. */
function readDeliveryStatus(part: MimeEntity): BounceReading {
  const groups = decodedBody(part)
    .split(/\r?\n[ \t]*\r?\n/)
    .map((group) => parseHeaderFields(group))
    .filter((fields) => fields.size > 0);
  const recipients = groups.filter((fields) => fields.has('action') || fields.has('final-recipient'));
  let delayed: BounceReading | null = null;
  for (const fields of recipients) {
    const action = (fields.get('action')?.[0] ?? '').toLowerCase().trim();
    const status = /([245]\.\d{1,3}\.\d{1,3})/.exec(fields.get('status')?.[0] ?? '')?.[1];
    const diagnostic = cleanDiagnostic(fields.get('diagnostic-code')?.[0]);
    const reading = (verdict: BounceVerdict): BounceReading => ({
      kind: 'dsn',
      verdict,
      ...(status ? { status } : {}),
      ...(diagnostic ? { diagnostic } : {}),
    });
    if (action === 'failed' || (!action && status?.startsWith('5'))) return reading('failure');
    if (action === 'delayed') delayed ??= reading('delay-warning');
  }
  return delayed ?? { kind: 'dsn', verdict: 'not-a-failure' };
}

function cleanDiagnostic(value: string | undefined): string | undefined {
  if (!value) return undefined;
  // "smtp; 550 5.1.1 <x@y>: Recipient address rejected" -> keep the reply, drop the type.
  const text = value.replace(/^[a-z-]+;\s*/i, '').replace(/\s+/g, ' ').trim();
  return text ? clip(text, 300) : undefined;
}

const autoReplySubject = /^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|vacation|abwesenheit|absence|on leave|away from)/i;
const permanentText =
  /(\b5\.\d{1,3}\.\d{1,3}\b|\b55[0-4][ -]|user unknown|unknown user|no such (user|mailbox|recipient)|mailbox (unavailable|not found|does not exist|disabled)|does not exist|recipient address rejected|address rejected|undeliverable|could not be delivered|delivery (has )?failed|permanent(ly)? (error|failure)|account (is )?disabled|not our customer|invalid recipient)/i;
const delayText = /(delayed|will (be )?retr(y|ied)|still trying|has not yet been delivered|temporar(y|ily) (failure|unavailable|error)|\b4\.\d{1,3}\.\d{1,3}\b)/i;

function readPlainBounce(message: MimeEntity): BounceReading {
  const subject = header(message, 'subject');
  const text = `${subject}\n${firstText(message, 0)}`.slice(0, 64 * 1024);
  const status = /\b([45]\.\d{1,3}\.\d{1,3})\b/.exec(text)?.[1];
  const reply = /\b([45]\d\d[ -][^\r\n]{0,200})/.exec(text)?.[1]?.trim();
  const result = (verdict: BounceVerdict): BounceReading => ({
    kind: 'plain',
    verdict,
    ...(status ? { status } : {}),
    ...(reply ? { diagnostic: clip(reply, 300) } : {}),
  });
  if (permanentText.test(text)) return result('failure');
  const autoReply =
    autoReplySubject.test(subject.trim()) ||
    message.headers.has('x-autoreply') ||
    message.headers.has('x-autorespond') ||
    /auto[_-]?reply/i.test(header(message, 'precedence')) ||
    /^auto-replied/i.test(header(message, 'auto-submitted')) && !/(failure|failed|undeliver|returned)/i.test(subject);
  if (autoReply) return result('auto-reply');
  if (delayText.test(text)) return result('delay-warning');
  return result('unknown');
}

/** The first text part's decoded content, or the whole body of a single-part message. */
function firstText(entity: MimeEntity, depth: number): string {
  const { type } = contentType(entity);
  if (type.startsWith('multipart/')) {
    if (depth >= maxDepth) return '';
    for (const child of multipartChildren(entity)) {
      const text = firstText(child, depth + 1);
      if (text) return text;
    }
    return '';
  }
  if (type.startsWith('text/')) return decodedBody(entity);
  return '';
}
