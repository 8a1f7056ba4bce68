// The Received: trace field intake puts on top of every message it stores (RFC 5321 §4.4), and finding it again.
import { isIPv6 } from 'node:net';

export interface TraceDetails {
  /** What the client said in EHLO/HELO (null when it said nothing). */
  helo: string | null;
  remoteAddress: string | null;
  /** Our domain: the "by" part. */
  domain: string;
  /** smtp-server's transmissionType: SMTP, ESMTP, ESMTPS (RFC 3848). */
  protocol: string;
  /** SMTPUTF8 was requested: the protocol becomes UTF8SMTP / UTF8SMTPS (RFC 6531). */
  smtpUtf8: boolean;
  spoolId: string;
  date: Date;
  /** '\r\n', or '\n' when the message itself uses bare line feeds (one ending style per message). */
  lineBreak: string;
}

/** The client's EHLO name as a header-safe token: it is the client's claim, so anything odd is replaced, never copied. */
function heloToken(helo: string | null): string {
  const trimmed = (helo ?? '').trim();
  return /^[A-Za-z0-9.\-_:[\]]{1,255}$/.test(trimmed) ? trimmed : 'unknown';
}

/** The TCP-info address literal; no reverse DNS lookup (intake never makes one). */
function addressLiteral(address: string | null): string {
  if (!address) return '[unknown]';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return `[${mapped[1]}]`;
  return isIPv6(address) ? `[IPv6:${address}]` : `[${address}]`;
}

function withProtocol(details: TraceDetails): string {
  const protocol = /^[A-Z]{4,10}$/.test(details.protocol) ? details.protocol : 'ESMTP';
  return details.smtpUtf8 && protocol.startsWith('ESMTP') ? `UTF8${protocol.slice(1)}` : protocol;
}

/** `Received: from HELO ([IP]) by DOMAIN (Embargo) with ESMTP id SPOOLID; DATE`, folded, ending in a line break. */
export function receivedField(details: TraceDetails): Buffer {
  const date = details.date.toUTCString().replace('GMT', '+0000');
  const fold = `${details.lineBreak}\t`;
  return Buffer.from(
    `Received: from ${heloToken(details.helo)} (${addressLiteral(details.remoteAddress)})${fold}by ${details.domain} (Embargo) with ${withProtocol(details)} id ${details.spoolId};${fold}${date}${details.lineBreak}`,
    'latin1',
  );
}

/** The line break style of a message: bare '\n' only when its first line ends in one. */
export function lineBreakOf(firstChunk: Buffer | undefined): string {
  if (!firstChunk) return '\r\n';
  const newline = firstChunk.indexOf(10);
  return newline > 0 && firstChunk[newline - 1] !== 13 ? '\n' : '\r\n';
}

/**
 * Bytes of our own Received field at the top of a stored message (0 when there is none, e.g. rows stored before
 * intake added it). It names the spool id, which no sender can know in advance, so a forged one is not taken for ours.
 * Ours is always exactly three lines (see receivedField): counted by lines, not by folding, since a malformed message
 * that starts with white space would otherwise look like a fourth folded line of ours.
 */
export function ownTraceLength(raw: Buffer, spoolId: string): number {
  // Ours is a few hundred bytes at most.
  const head = raw.subarray(0, 2048);
  if (!head.subarray(0, 15).equals(Buffer.from('Received: from '))) return 0;
  let end = 0;
  for (let line = 0; line < 3; line++) {
    const newline = head.indexOf(10, end);
    if (newline < 0) return 0;
    end = newline + 1;
  }
  const lines = head.subarray(0, end).toString('latin1').split('\n');
  return lines[1].startsWith('\tby ') && lines[1].includes(' (Embargo) with ') && lines[1].includes(` id ${spoolId};`) && lines[2].startsWith('\t') ? end : 0;
}

/** The message as its sender sent it: without our own trace field. A view, not a copy. */
export function asSent(raw: Buffer, spoolId: string): Buffer {
  return raw.subarray(ownTraceLength(raw, spoolId));
}
