// The one MIME reader on the awkward input its three former copies (crypto, splitMessage, the bounce reader) each handled: the answers are what the old code gave, except where a case says otherwise.
import { describe, expect, it } from 'vitest';
import { splitMessage } from '../../src/lists/headers.ts';
import { decodeBody } from '../../src/mime/decode.ts';
import { parseMime, splitHeaders, splitMultipart } from '../../src/mime/read.ts';
import { classifyBounce } from '../../src/lists/bounce-reading.ts';

const limits = { maxDepth: 10, maxParts: 50 };

describe('MIME splitter', () => {
  it('returns each part as the exact bytes between delimiters; the line break before a delimiter belongs to it', () => {
    const body = Buffer.from('preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n\r\n--b \r\n\r\ntwo\r\n--b--\r\nepilogue\r\n');
    const parts = splitMultipart(body, 'b');
    expect(parts.map((part) => part.toString())).toEqual(['Content-Type: text/plain\r\n\r\none\r\n', '\r\ntwo']);
  });

  it('does not split on a longer boundary that starts with this one, nor mid-line', () => {
    const body = Buffer.from('--b\r\nA\r\n--bb\r\nx --b\r\n--b--\r\n');
    expect(splitMultipart(body, 'b').map((part) => part.toString())).toEqual(['A\r\n--bb\r\nx --b']);
  });

  it('handles LF-only messages and parses nested structure with headers unfolded', () => {
    const raw = Buffer.from('Subject: a\n  folded\nContent-Type: multipart/mixed;\n boundary="x"\n\n--x\nContent-Type: text/plain\n\nhi\n--x--\n');
    const parsed = parseMime(raw, limits);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.entity.headers[0].value).toBe('a  folded'); // RFC 5322 unfolding removes only the line break
    expect(parsed.entity.contentType).toEqual({ type: 'multipart/mixed', params: { boundary: 'x' } });
    expect(parsed.entity.children[0].raw.toString()).toBe('Content-Type: text/plain\n\nhi');
    expect(parsed.entity.children[0].body.toString()).toBe('hi');
  });

  it('keeps the last part of a multipart cut off before its closing delimiter', () => {
    const raw = Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\nContent-Type: text/pl');
    const parsed = parseMime(raw, limits);
    expect(parsed.ok && parsed.entity.children.map((child) => child.raw.toString())).toEqual(['Content-Type: text/plain\r\n\r\none', 'Content-Type: text/pl']);
  });

  it('reports a multipart without boundary as malformed', () => {
    const parsed = parseMime(Buffer.from('Content-Type: multipart/mixed\r\n\r\nx'), limits);
    expect(parsed.ok ? 'ok' : parsed.error.code).toBe('malformed');
  });
});

describe('header fields, as bytes (crypto) and as text (splitMessage)', () => {
  const fields = (raw: string) => ({
    text: splitMessage(Buffer.from(raw)),
    bytes: splitHeaders(Buffer.from(raw)),
  });

  it('reads LF-only and CRLF headers alike', () => {
    for (const newline of ['\n', '\r\n']) {
      const { text, bytes } = fields(`From: A <a@x.example>${newline}Subject: hi${newline}${newline}body${newline}`);
      expect(text.headers).toEqual([
        ['From', 'A <a@x.example>'],
        ['Subject', 'hi'],
      ]);
      expect(text.body.toString()).toBe(`body${newline}`);
      expect(bytes.headers.map((header) => header.raw.toString())).toEqual([`From: A <a@x.example>${newline}`, `Subject: hi${newline}`]);
    }
  });

  it('unfolds folded headers: as text one space per fold, as bytes only the line breaks removed', () => {
    const { text, bytes } = fields('Subject: one  \r\n\ttwo\r\n   three\r\nTo: b@x.example\r\n\r\n');
    expect(text.headers).toEqual([
      ['Subject', 'one two three'],
      ['To', 'b@x.example'],
    ]);
    expect(bytes.headers[0].value).toBe('one  \ttwo   three');
    expect(bytes.headers[0].raw.toString()).toBe('Subject: one  \r\n\ttwo\r\n   three\r\n');
  });

  it('reads UTF-8 header bytes as UTF-8 text, and keeps them as bytes for crypto', () => {
    const raw = Buffer.from('Subject: Grüße\r\n\r\n', 'utf8');
    expect(splitMessage(raw).headers).toEqual([['Subject', 'Grüße']]);
    expect(Buffer.from(splitHeaders(raw).headers[0].value, 'latin1').toString('utf8')).toBe('Grüße');
  });

  it('takes a message without the blank line for all header, and an entity starting with the blank line for all body', () => {
    const noSeparator = fields('From: a@x.example\r\nSubject: s');
    expect(noSeparator.text.headers).toEqual([
      ['From', 'a@x.example'],
      ['Subject', 's'],
    ]);
    expect(noSeparator.text.body.length).toBe(0);
    expect(noSeparator.bytes.bodyStart).toBe(Buffer.byteLength('From: a@x.example\r\nSubject: s'));
    for (const newline of ['\n', '\r\n']) {
      const headless = fields(`${newline}Subject: not a header${newline}${newline}text`);
      expect(headless.text.headers).toEqual([]);
      expect(headless.text.body.toString()).toBe(`Subject: not a header${newline}${newline}text`);
    }
  });

  it('skips a line that is no field together with its folded lines', () => {
    // The old splitMessage appended such folds to the field before ("a folded"), and the old crypto splitter took a
    // colon in a fold for the end of a name with a line break in it; both now skip the junk line and its folds.
    const { text, bytes } = fields('Subject: a\r\njunk without colon\r\n folded: no\r\n: no name\r\nTo: b@x.example\r\n\r\n');
    expect(text.headers).toEqual([
      ['Subject', 'a'],
      ['To', 'b@x.example'],
    ]);
    expect(bytes.headers.map((header) => header.key)).toEqual(['subject', 'to']);
  });

  it('finds the end of a header block of many junk lines in one pass', () => {
    const junk = Buffer.from(`${'x'.repeat(30)}\r\n`.repeat(200_000));
    const started = performance.now();
    expect(splitMessage(junk).headers).toEqual([]);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('transfer decoding', () => {
  const part = (transferEncoding: string, body: string) => ({ transferEncoding, body: Buffer.from(body, 'latin1') });

  it('decodes quoted-printable soft breaks and escapes', () => {
    expect(decodeBody(part('quoted-printable', 'a=3Db=\r\nc =C3=BC\r\n')).toString('utf8')).toBe('a=bc ü\r\n');
    // RFC 2045 6.7 (3): whitespace at the end of an encoded line was added in transport and is removed.
    expect(decodeBody(part('quoted-printable', 'a \r\nb=20\r\n')).toString()).toBe('a\r\nb \r\n');
  });

  it('decodes base64 across line breaks and leaves other encodings as received', () => {
    expect(decodeBody(part('base64', 'SGVs\r\nbG8=\r\n')).toString()).toBe('Hello');
    expect(decodeBody(part('8bit', 'as is =3D')).toString()).toBe('as is =3D');
  });
});

describe('bounce reading on the shared reader', () => {
  const report = (newline: string, statusBody: string, encoding = '7bit') =>
    [
      'From: MAILER-DAEMON@mx.example',
      'Subject: Undelivered Mail Returned to Sender',
      'Content-Type: multipart/mixed; boundary="outer"',
      '',
      '--outer',
      'Content-Type: multipart/report; report-type=delivery-status;',
      '\tboundary="inner"',
      '',
      '--inner',
      'Content-Type: text/plain',
      '',
      'Your message could not be sent.',
      '--inner',
      'Content-Type: message/delivery-status',
      `Content-Transfer-Encoding: ${encoding}`,
      '',
      statusBody,
      '--inner',
      'Content-Type: message/rfc822',
      '',
      'Subject: the original',
      '',
      'text',
      '--inner--',
      '--outer--',
      '',
    ].join(newline);
  const groups = (newline: string, separator: string) =>
    ['Reporting-MTA: dns; mx.example', separator, 'Final-Recipient: rfc822; m@x.example', 'Action: failed', 'Status: 5.1.1', 'Diagnostic-Code: smtp; 550 5.1.1 <m@x.example>:', '    User unknown'].join(newline);

  it('finds the report inside a nested multipart/report, LF-only or CRLF, with folded and repeated blank separators', () => {
    for (const newline of ['\n', '\r\n']) {
      for (const separator of ['', newline, ' \t']) {
        expect(classifyBounce(Buffer.from(report(newline, groups(newline, separator))))).toEqual({
          kind: 'dsn',
          verdict: 'failure',
          status: '5.1.1',
          diagnostic: '550 5.1.1 <m@x.example>: User unknown',
        });
      }
    }
  });

  it('decodes a quoted-printable or base64 report part with the shared decoder', () => {
    const text = groups('\r\n', '');
    const qp = text.replace(/=/g, '=3D').replace(/(.{40})/g, '$1=\r\n');
    expect(classifyBounce(Buffer.from(report('\r\n', qp, 'quoted-printable'))).status).toBe('5.1.1');
    const base64 = Buffer.from(text).toString('base64').replace(/.{1,76}/g, '$&\r\n');
    expect(classifyBounce(Buffer.from(report('\r\n', base64, 'base64'))).status).toBe('5.1.1');
  });

  it('reads what is there of a report cut off inside its status part', () => {
    const whole = report('\r\n', groups('\r\n', ''));
    const cut = whole.slice(0, whole.indexOf('Status: 5.1.1') + 'Status: 5.1.1'.length);
    expect(classifyBounce(Buffer.from(cut))).toEqual({ kind: 'dsn', verdict: 'failure', status: '5.1.1' });
  });

  it('reads the whole text of a part without header fields', () => {
    // The old reader looked for the first blank line anywhere, so it took the first paragraph of such a part for a
    // header block and lost it; the shared reader sees the part start with its blank line and keeps all the text.
    const raw = 'Subject: Notice\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nThe mailbox does not exist.\r\n\r\nRegards\r\n--b--\r\n';
    expect(classifyBounce(Buffer.from(raw))).toMatchObject({ kind: 'plain', verdict: 'failure' });
  });
});
