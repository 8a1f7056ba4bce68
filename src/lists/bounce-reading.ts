// Reads a message sent to a VERP address: an RFC 3464 delivery report when it is one, otherwise a plain bounce by its text.
// Synchronous and bounded: bounces come from strangers' servers, so only the first part of a big message is looked at
// (the report part always comes before the returned original), with limits on depth and parts.
import { decodeBody, type TransferEncoded } from '../mime/decode.ts';
import { fieldName, fieldText, parseContentType, scanHeader, splitMultipart, type ContentType } from '../mime/read.ts';

export type BounceKind = 'dsn' | 'plain';

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

/** A part as the bounce rules read it: header fields as text (names lower-cased, repeats kept in order) over the MIME reader's structure. */
interface BouncePart extends TransferEncoded {
  headers: Map<string, string[]>;
  contentType: ContentType;
}

/** Classifies a message sent to a VERP address: an RFC 3464 report when it is one, otherwise a plain bounce by its text. */
export function classifyBounce(raw: Buffer): BounceReading {
  const message = readPart(raw.subarray(0, maxInspectedBytes));
  const report = findDeliveryStatus(message, 0, { parts: 0 });
  if (report) return readDeliveryStatus(report);
  return readPlainBounce(message);
}

function readPart(raw: Buffer): BouncePart {
  const { headers, bodyStart } = textFields(raw);
  const contentType = parseContentType(headers.get('content-type')?.[0]);
  const transferEncoding = (headers.get('content-transfer-encoding')?.[0] ?? '7bit').toLowerCase();
  return { headers, contentType, transferEncoding, body: raw.subarray(bodyStart) };
}

/** Header-style fields (mail headers, DSN field groups) as text, by lower-cased name. */
function textFields(raw: Buffer): { headers: Map<string, string[]>; bodyStart: number } {
  const { fields, bodyStart } = scanHeader(raw);
  const headers = new Map<string, string[]>();
  for (const field of fields) {
    const name = fieldName(raw, field).toLowerCase();
    const values = headers.get(name) ?? [];
    values.push(fieldText(raw, field));
    headers.set(name, values);
  }
  return { headers, bodyStart };
}

function header(part: BouncePart, name: string): string {
  return part.headers.get(name)?.[0] ?? '';
}

function multipartChildren(part: BouncePart): BouncePart[] {
  const boundary = part.contentType.params.boundary;
  if (!boundary) return [];
  return splitMultipart(part.body, boundary).slice(0, maxParts).map(readPart);
}

function decodedText(part: BouncePart): string {
  return decodeBody(part).toString('utf8');
}

function findDeliveryStatus(part: BouncePart, depth: number, budget: { parts: number }): BouncePart | null {
  if (depth > maxDepth || ++budget.parts > maxParts) return null;
  const { type } = part.contentType;
  if (type === 'message/delivery-status' || type === 'message/global-delivery-status') return part;
  if (!type.startsWith('multipart/')) return null;
  for (const child of multipartChildren(part)) {
    // The returned original (message/rfc822) is not searched: a bounce of a bounce must not count twice.
    const found = findDeliveryStatus(child, depth + 1, budget);
    if (found) return found;
  }
  return null;
}

/** RFC 3464: a per-message field group, then one group per recipient with Action, Status and Diagnostic-Code. */
function readDeliveryStatus(part: BouncePart): BounceReading {
  // Groups are split here, not by the header reader: a separating line may hold whitespace, and there may be several.
  const groups = decodedText(part)
    .split(/\r?\n[ \t]*\r?\n/)
    .map((group) => textFields(Buffer.from(group.trimStart(), 'utf8')).headers)
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

function readPlainBounce(message: BouncePart): BounceReading {
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
function firstText(part: BouncePart, depth: number): string {
  const { type } = part.contentType;
  if (type.startsWith('multipart/')) {
    if (depth >= maxDepth) return '';
    for (const child of multipartChildren(part)) {
      const text = firstText(child, depth + 1);
      if (text) return text;
    }
    return '';
  }
  if (type.startsWith('text/')) return decodedText(part);
  return '';
}

function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length)}…` : text;
}
