// CRLF canonicalisation and the armor arithmetic the shared fan-out relies on (CRC-24 combination, packet re-framing).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { base64LinesOf, combineCrc24, copyFraming, crc24, crc24ZeroOperator, readPacket, sharedFraming, SEIPD_TAG_OCTET } from '../../src/crypto/armor.ts';
import { canonicalCrlf } from '../../src/crypto/mime.ts';

describe('CRLF canonical form', () => {
  it('canonicalises bare LF to CRLF and leaves CRLF alone', () => {
    expect(canonicalCrlf(Buffer.from('a\nb\r\nc\n')).toString()).toBe('a\r\nb\r\nc\r\n');
    const already = Buffer.from('a\r\nb');
    expect(canonicalCrlf(already)).toBe(already);
  });
});

describe('armor arithmetic', () => {
  it('combines CRC-24 of prefix and shared part exactly like a CRC over the whole', () => {
    for (const [prefixLength, sharedLength] of [
      [1, 1],
      [97, 5000],
      [530, 1_048_577],
    ]) {
      const prefix = randomBytes(prefixLength);
      const shared = randomBytes(sharedLength);
      const combined = combineCrc24(crc24(prefix), crc24(shared, 0), crc24ZeroOperator(shared.length));
      expect(combined).toBe(crc24(Buffer.concat([prefix, shared])));
    }
  });

  it('base64 over pieces equals plain base64 in 64-character CRLF lines, at every block boundary', () => {
    for (const length of [0, 1, 47, 48, 49, 48 * 1024 - 1, 48 * 1024, 48 * 1024 + 1, 200_003]) {
      const data = randomBytes(length);
      const pieces = [data.subarray(0, Math.floor(length / 3)), data.subarray(Math.floor(length / 3), Math.floor(length / 3) + 7), data.subarray(Math.floor(length / 3) + 7)];
      const expected = (data.toString('base64').match(/.{1,64}/g) ?? []).map((line) => `${line}\r\n`).join('');
      expect(base64LinesOf(pieces).toString('latin1')).toBe(expected);
    }
  });

  it('re-framed SEIPD bodies read back to the same body with every copy framing', () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const shared = sharedFraming(body.subarray(516));
    for (const octets of [2, 3, 4] as const) {
      const packet = Buffer.concat([Buffer.from([SEIPD_TAG_OCTET]), copyFraming(body, octets), shared]);
      expect(packet.length).toBe(1 + body.length + octets + (shared.length - (body.length - 516)));
      const read = readPacket(packet);
      expect(read.tag).toBe(18);
      expect(read.end).toBe(packet.length);
      expect(read.body.equals(body)).toBe(true);
      // Compacted in place: the same body, inside the packet's own memory (no second copy).
      const own = Buffer.from(packet);
      const inPlace = readPacket(own, 0, { compactInPlace: true });
      expect(inPlace.end).toBe(packet.length);
      expect(inPlace.body.equals(body)).toBe(true);
      expect(inPlace.body.buffer).toBe(own.buffer);
    }
  });
});

describe('protected header encoding', () => {
  it('keeps ASCII values as given, encodes display names and long non-ASCII subjects as folded RFC 2047 words', async () => {
    const { buildInnerEntity } = await import('../../src/crypto/index.ts');
    const subject = 'Sicherheitslücke in der Hypercall-Behandlung: Überlauf bei großen Eingaben (XSA-1234)';
    const inner = buildInnerEntity({
      protectedHeaders: [
        ['Subject', subject],
        ['From', 'Jürgen Müller <security@vendor.example>'],
        ['To', 'list@lists.example.org'],
        ['Content-Type', 'text/html'],
      ],
      note: 'note',
      content: Buffer.from('Content-Type: text/plain\r\n\r\nx\r\n'),
    }).toString('latin1');
    const headerBlock = inner.slice(0, inner.indexOf('\r\n\r\n'));
    expect(headerBlock).toContain('From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <security@vendor.example>');
    expect(headerBlock).toContain('To: list@lists.example.org');
    expect(headerBlock).not.toContain('text/html');
    for (const line of headerBlock.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
    const subjectLines = headerBlock.slice(headerBlock.indexOf('Subject: ')).split('\r\n').filter((line, index) => index === 0 || line.startsWith(' '));
    const decoded = subjectLines
      .map((line) => line.replace(/^Subject: | /g, ''))
      .join('')
      .replace(/=\?UTF-8\?B\?([^?]*)\?=/g, (_match, base64: string) => Buffer.from(base64, 'base64').toString('utf8'));
    expect(decoded).toBe(subject);
  });
});
