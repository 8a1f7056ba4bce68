// Reads a message sent to a VERP address: an RFC 3464 delivery report when it is one, otherwise a plain bounce by its text.
// Synchronous and bounded: bounces come from strangers' servers, so only the first part of a big message is looked at
// (the report part always comes before the returned original), with limits on depth and parts.

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

function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length)}…` : text;
}
