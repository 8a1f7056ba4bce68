// The list engine's pure parts: command parsing, header reading, loop detection, List-* headers, rejection words, subscribers.
import { describe, expect, it } from 'vitest';
import type { Config, ListConfig } from '../../src/config/types.ts';
import { parseCommands } from '../../src/lists/commands.ts';
import type { MessageContext } from '../../src/lists/context.ts';
import { firstMailbox, messageIdOf, splitMessage } from '../../src/lists/headers.ts';
import { textEntity } from '../../src/lists/mime.ts';
import { listHeaders, rewrittenFrom } from '../../src/lists/outgoing-headers.ts';
import { postPipeline } from '../../src/lists/pipeline.ts';
import { rejectionText } from '../../src/lists/rejections.ts';
import { detectLoop } from '../../src/lists/stages/detect-loop.ts';
import { applyToken, confirmedSubscribers, findToken, insertToken } from '../../src/lists/subscribers.ts';
import { openDatabase } from '../../src/store/database.ts';
import { migrations } from '../../src/schema.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { simpleParser } from 'mailparser';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function list(overrides: Partial<ListConfig> = {}): ListConfig {
  return {
    name: 'demo',
    address: 'demo@lists.example.org',
    file: '/dev/null',
    description: 'Demo list',
    kind: 'public',
    archive: 'public',
    moderated: false,
    sendToPoster: true,
    replyTo: 'none',
    postsPerHourPerSender: 20,
    mailOnRelease: false,
    members: [],
    ...overrides,
  } as ListConfig;
}

function config(demo: ListConfig): Config {
  return {
    server: {
      domain: 'lists.example.org',
      admins: ['postmaster@lists.example.org'],
      http: { host: '127.0.0.1', port: 8025, enabled: true, publicUrl: 'https://lists.example.org' },
      smtp: { maxMessageBytes: 1000 },
    },
    lists: new Map([[demo.name, demo]]),
  } as unknown as Config;
}

function context(raw: string, envelopeFrom = 'someone@example.net', demo = list()): MessageContext {
  const outer = splitMessage(Buffer.from(raw));
  return { list: demo, config: config(demo), outer, envelopeFrom, raw: Buffer.from(raw) } as MessageContext;
}

describe('pipeline order', () => {
  it('is one readable list, loop detection first and fan-out last', () => {
    expect(postPipeline[0]).toBe('detect-loop');
    expect(postPipeline.at(-1)).toBe('fan-out');
    expect(postPipeline.indexOf('verify')).toBeLessThan(postPipeline.indexOf('authorize'));
    expect(postPipeline.indexOf('moderate')).toBeLessThan(postPipeline.indexOf('archive'));
  });
});

describe('parseCommands', () => {
  it('reads the subject and body lines, skipping quotes and stopping at a signature', () => {
    const parsed = parseCommands('Re: confirm 0123abcd', 'confirm 0123abcd\n> subscribe\nhelp\n-- \nunsubscribe\n');
    expect(parsed.commands.map((command) => [command.name, command.args])).toEqual([
      ['confirm', ['0123abcd']],
      ['help', []],
    ]);
  });

  it('stops after too many lines of free text, and takes approve/reject with their arguments', () => {
    const parsed = parseCommands(undefined, 'reject 01ABC not on topic here\nhello\nthere\nthis\nis\nprose\napprove 01XYZ');
    expect(parsed.commands).toEqual([{ name: 'reject', args: ['01ABC', 'not', 'on', 'topic', 'here'], line: 'reject 01ABC not on topic here', source: 'body' }]);
    expect(parsed.unknown).toHaveLength(5);
  });
});

describe('headers', () => {
  it('unfolds fields, decodes display names, and finds Message-IDs', () => {
    const { headers, body } = splitMessage(Buffer.from('From: =?utf-8?q?J=C3=B6rg?=\r\n <JOERG@Example.NET>\r\nMessage-ID:\r\n <abc@x.example>\r\n\r\nbody'));
    expect(firstMailbox(headers[0][1])).toEqual({ name: 'Jörg', address: 'joerg@example.net' });
    expect(messageIdOf(headers[1][1])).toBe('abc@x.example');
    expect(body.toString()).toBe('body');
  });

  it('reads an entity with no header fields (a plain mail body made a MIME part) as all body', () => {
    for (const newline of ['\r\n', '\n']) {
      const text = `Vendor C asks to join.${newline}${newline}Second paragraph.${newline}${newline}`;
      const { headers, body } = splitMessage(Buffer.from(`${newline}${text}`));
      expect(headers).toEqual([]);
      expect(body.toString()).toBe(text);
    }
  });

  it('rewrites From to the list and builds RFC 2369/2919 fields per list kind', () => {
    const demo = list();
    expect(rewrittenFrom(demo, { name: 'Alice', address: 'alice@example.net' }, null)).toBe('"Alice via demo" <demo@lists.example.org>');
    const fields = Object.fromEntries(listHeaders(config(demo), demo));
    expect(fields['List-Id']).toBe('"Demo list" <demo.lists.example.org>');
    expect(fields['List-Post']).toBe('<mailto:demo@lists.example.org>');
    expect(fields['List-Archive']).toBe('<https://lists.example.org/lists/demo/>');
    const announce = list({ kind: 'announce', archive: 'private' });
    const announceFields = Object.fromEntries(listHeaders(config(announce), announce));
    expect(announceFields['List-Post']).toBe('NO');
    expect(announceFields['List-Archive']).toBeUndefined();
  });
});

describe('text entities', () => {
  it('send plain short ASCII as 7bit, and anything else as quoted-printable lines of at most 76 that decode to the text', async () => {
    expect(textEntity('Held for moderation.\nReason: too big').toString()).toContain('Transfer-Encoding: 7bit\r\n\r\nHeld for moderation.\r\nReason: too big\r\n');
    const text = `Grüße — ${'ü'.repeat(90)}\n\tindented, trailing space \n${'x'.repeat(200)}`;
    const entity = textEntity(text);
    expect(entity.toString()).toContain('Content-Transfer-Encoding: quoted-printable\r\n');
    expect(Math.max(...entity.toString().split('\r\n').map((line) => line.length))).toBeLessThanOrEqual(76);
    expect((await simpleParser(entity)).text).toBe(`${text}\n`);
  });
});

describe('detect-loop', () => {
  const base = 'From: a@example.net\r\nTo: demo@lists.example.org\r\nSubject: x\r\n';
  it.each([
    ['our List-Id', `${base}List-Id: Demo <demo.lists.example.org>\r\n\r\nx`, 'a@example.net'],
    ['our X-Loop', `${base}X-Loop: demo@lists.example.org\r\n\r\nx`, 'a@example.net'],
    ['Auto-Submitted: auto-replied', `${base}Auto-Submitted: auto-replied\r\n\r\nx`, 'a@example.net'],
    ['Precedence: bulk', `${base}Precedence: bulk\r\n\r\nx`, 'a@example.net'],
    ['the null return path', `${base}\r\nx`, ''],
    ['a delivery report', `${base}Content-Type: multipart/report; report-type=delivery-status\r\n\r\nx`, 'x@example.net'],
  ])('discards mail with %s', (_name, raw, envelope) => {
    expect(detectLoop(context(raw, envelope)).kind).toBe('discard');
  });

  it('lets ordinary mail and Auto-Submitted: no through', () => {
    expect(detectLoop(context(`${base}Auto-Submitted: no\r\nList-Id: <other.example.org>\r\n\r\nx`)).kind).toBe('continue');
  });
});

describe('rejection texts', () => {
  it('use the same words for every signature that is not from a key allowed to post, on either kind of private list', () => {
    for (const kind of ['discussion', 'announce'] as const) {
      const demo = list({ kind, archive: 'private' });
      const texts = new Set((['bad-signature', 'not-authorized'] as const).map((code) => rejectionText(config(demo), demo, code, 'ID')));
      expect(texts.size).toBe(1);
    }
  });

  it('say what is wrong with the post itself: not encrypted (and where the key is), old list key, unsigned, uncovered attachments', () => {
    const demo = list({ kind: 'discussion', archive: 'private' });
    const text = (code: Parameters<typeof rejectionText>[2]) => rejectionText(config(demo), demo, code, 'ID');
    expect(text('not-encrypted')).toBe(text('undecryptable'));
    expect(text('not-encrypted')).toContain('demo-sendkey@lists.example.org');
    expect(text('old-list-key')).toContain('the list has a new OpenPGP key');
    expect(text('unsigned')).toContain('It is not signed.');
    expect(rejectionText(config(demo), demo, 'uncovered-attachment', 'ID', undefined, 'Not covered: attachment 2 of 2.')).toContain('Not covered: attachment 2 of 2.');
    expect(new Set((['not-encrypted', 'old-list-key', 'unsigned', 'bad-signature', 'uncovered-attachment'] as const).map(text)).size).toBe(5);
  });
});

describe('subscribers', () => {
  it('subscribes only through a token, once, and unsubscribes the same way', () => {
    const dir = mkdtempSync(join(tmpdir(), 'embargo-subscribers-'));
    const db = openDatabase(join(dir, 'db.sqlite'), migrations);
    try {
      insertToken(db, { token: 'aa11', list: 'demo', address: 'New@Example.net', action: 'subscribe', now: 1000 });
      expect(confirmedSubscribers(db, 'demo')).toEqual([]);
      const pending = findToken(db, 'demo', 'AA11')!;
      expect(pending.address).toBe('new@example.net');
      expect(findToken(db, 'other', 'aa11')).toBeNull();
      applyToken(db, 'demo', pending, 2000);
      expect(confirmedSubscribers(db, 'demo')).toEqual(['new@example.net']);
      expect(findToken(db, 'demo', 'aa11')).toBeNull();
      insertToken(db, { token: 'bb22', list: 'demo', address: 'new@example.net', action: 'unsubscribe', now: 3000 });
      applyToken(db, 'demo', findToken(db, 'demo', 'bb22')!, 4000);
      expect(confirmedSubscribers(db, 'demo')).toEqual([]);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('firstMailbox on long headers', () => {
  it('finds the first mailbox of thousands of addresses, as parsing the whole header does', () => {
    const many = Array.from({ length: 5000 }, (_, index) => `"Name, ${index}" <user${index}@example.net>`).join(', ');
    expect(firstMailbox(many)).toEqual({ name: 'Name, 0', address: 'user0@example.net' });
    // The first entry without an address: the first one with an address, wherever it is.
    expect(firstMailbox(`undisclosed-recipients:;, ${'junk, '.repeat(800)}late@example.net`)).toEqual({ name: '', address: 'late@example.net' });
  });

  it('a first entry longer than the prefix it looks at is read whole', () => {
    const longName = `"${'Very, long; name '.repeat(300)}" <first@example.net>, second@example.net`;
    expect(firstMailbox(longName)?.address).toBe('first@example.net');
    const comment = `first@example.net (${'a comment, with commas '.repeat(200)}), second@example.net`;
    expect(firstMailbox(comment)?.address).toBe('first@example.net');
  });
});
