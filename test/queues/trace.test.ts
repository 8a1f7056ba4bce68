// The Received trace field intake adds (RFC 5321 4.4): its form, and finding exactly our own again.
import { expect, it } from 'vitest';
import { asSent, lineBreakOf, ownTraceLength, receivedField } from '../../src/queues/trace.ts';

const details = {
  helo: 'mx.sender.example',
  remoteAddress: '192.0.2.7',
  domain: 'lists.example.org',
  protocol: 'ESMTPS',
  smtpUtf8: false,
  spoolId: '01M8C9A63X88ARN',
  date: new Date(Date.UTC(2026, 10, 26, 15, 51, 58)),
  lineBreak: '\r\n',
};

it('writes from, by, with, id and date, folded, with address literals for IPv4, IPv4-mapped and IPv6 peers', () => {
  expect(receivedField(details).toString()).toBe(
    'Received: from mx.sender.example ([192.0.2.7])\r\n\tby lists.example.org (Embargo) with ESMTPS id 01M8C9A63X88ARN;\r\n\tThu, 26 Nov 2026 15:51:58 +0000\r\n',
  );
  expect(receivedField({ ...details, remoteAddress: '::ffff:192.0.2.7' }).toString()).toContain('([192.0.2.7])');
  expect(receivedField({ ...details, remoteAddress: '2001:db8::1' }).toString()).toContain('([IPv6:2001:db8::1])');
  expect(receivedField({ ...details, helo: 'x\r\nBcc: victim@example.org' }).toString()).toMatch(/^Received: from unknown /);
  expect(receivedField({ ...details, protocol: 'ESMTP', smtpUtf8: true }).toString()).toContain('with UTF8SMTP id');
});

it('finds exactly our own field again: not a forged one, not a sender line that starts with white space', () => {
  const sent = Buffer.from(' continuation first\r\nSubject: odd\r\n\r\nbody\r\n');
  const stored = Buffer.concat([receivedField(details), sent]);
  expect(asSent(stored, details.spoolId).equals(sent)).toBe(true);
  // A field of the same form naming another id is the sender's, not ours.
  expect(ownTraceLength(stored, '01M8C9A63X88ARZ')).toBe(0);
  expect(ownTraceLength(sent, details.spoolId)).toBe(0);
  const bare = Buffer.from('Subject: bare\n\nline feeds only\n');
  expect(lineBreakOf(bare)).toBe('\n');
  const storedBare = Buffer.concat([receivedField({ ...details, lineBreak: lineBreakOf(bare) }), bare]);
  expect(storedBare.toString()).not.toContain('\r');
  expect(asSent(storedBare, details.spoolId).equals(bare)).toBe(true);
});
