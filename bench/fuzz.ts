// Fuzzes a real child daemon over SMTP with generated malformed mail; every message must end in a clear reply and a final spool state.
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { ensureListKey } from '../src/crypto/index.ts';
import { asSent, ownTraceLength } from '../src/queues/trace.ts';
import { createGpgHome } from '../test/helpers/gpg.ts';
import type { GpgHome } from '../test/helpers/gpg.ts';
import { makeTestConfig, startTestDaemon } from '../test/helpers/daemon.ts';
import type { LogLine, TestConfig, TestDaemon } from '../test/helpers/daemon.ts';
import { startRelayPeer } from '../test/helpers/relay.ts';
import { SmtpClient, sendMail } from '../test/helpers/smtp.ts';
import { errorMessage } from '../src/util/errors.ts';

export interface FuzzOptions {
  count: number;
  seed?: number;
  /** SMTP connections sending at once (default 8). */
  concurrency?: number;
  /** Largest message the daemon takes (default 3 MiB: room for the 1 MiB header lines and 10,000-part messages). */
  maxMessageBytes?: number;
  /** How long to wait, after the last message, for the pipeline to finish every spooled message (default 180 s). */
  settleTimeoutMs?: number;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
  /** Only these generators (default: all). */
  kinds?: string[];
}

export interface FuzzReport {
  seed: number;
  sent: number;
  seconds: number;
  /** SMTP reply code after DATA (or the refusal before it) → count; 0 = the connection closed without a reply. */
  replies: Record<string, number>;
  /** Messages whose reply was not the expected one (250 when stored, 552 over the size limit). */
  unexpectedReplies: Array<{ kind: string; variant: string; code: number; text: string }>;
  /** Final spool state → count. */
  states: Record<string, number>;
  /** Pipeline decision ("stage: code" or the role's words) → count. */
  reasons: Record<string, number>;
  /** Per generator: sent, replies and final states. */
  byKind: Record<string, Record<string, number>>;
  /** Spool rows that ended in `shunted` (an exception in the pipeline: a bug). */
  shunted: Array<{ id: string; kind: string; variant: string; reason: string | null }>;
  /** Spool rows still queued or processing when the wait ended. */
  stuck: Array<{ id: string; kind: string; variant: string; state: string }>;
  /** Spooled rows whose raw bytes differ from what was sent. */
  rawMismatches: Array<{ id: string; kind: string; variant: string }>;
  rawChecked: number;
  /** Times the daemon process died (it is restarted and the run goes on). */
  crashes: number;
  crashLogs: string[];
  /** Daemon log lines at level error or above, by message. */
  errorLogs: Record<string, number>;
  /** The messages the pipeline took longest over (from its 'message processed' log lines). */
  slowest: Array<{ id: string; kind: string; variant: string; ms: number }>;
  /** Largest VmRSS seen (sampled every 100 ms) and the kernel's high-water mark, in MiB. */
  peakRssMiB: number;
  highWaterRssMiB: number;
  /** Messages the pipeline finished per second, from its first to its last 'message processed' line of this run. */
  pipelineRate: number;
  /** How many 'message processed' lines that rate counts, over how many seconds. */
  pipelineProcessed: number;
  pipelineSeconds: number;
  relayMessages: number;
}

// ─── a seeded random source (mulberry32), so a seed reproduces the same run ─────────────────────────

export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let index = 0; index < length; index++) out[index] = this.int(256);
    return out;
  }
  token(length = 8): string {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
    let text = '';
    for (let index = 0; index < length; index++) text += alphabet[this.int(alphabet.length)];
    return text;
  }
}

// ─── the world the messages are aimed at ───────────────────────────────────────────────────────────

const domain = 'lists.example.org';
const lists = { announce: 'advisories', discussion: 'sharing', public: 'applications' } as const;
const poster = 'security@xen.example';
const member = 'security@vendor-a.example';
const outsider = 'someone@outside.example';
const admin = 'postmaster@lists.example.org';

/** Real GnuPG output the generators cut up and mutate. */
export interface Seeds {
  maxMessageBytes: number;
  /** Armored, signed by the poster, encrypted to both encrypted lists' keys. */
  signedEncrypted: Buffer;
  /** The same as binary OpenPGP packets (for packet-level mutation). */
  binaryEncrypted: Buffer;
  /** Armored, encrypted to the lists, not signed. */
  encryptedOnly: Buffer;
  /** Armored ciphertexts whose plaintext is a 10,000-part and a 100-deep MIME entity. */
  encryptedManyParts: Buffer;
  encryptedDeep: Buffer;
  /** 70 MiB of zeros, compressed (zlib -9), signed and encrypted to the lists: a compression bomb of about 70 KiB. */
  bomb: Buffer;
  /** The same zeros, compressed and signed only (opaque `gpg --sign`). */
  signedBomb: Buffer;
  /** A MIME entity and its detached armored signature by the poster. */
  detachedEntity: string;
  detachedSignature: Buffer;
  /** A clearsigned advisory text by the poster. */
  clearsigned: Buffer;
}

const seedEntity =
  'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nXSA-000: fuzz seed advisory.\r\nNothing in this message is real.\r\n';

export function manyPartsEntity(parts: number): string {
  const boundary = 'many-parts-boundary';
  let text = `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n`;
  for (let index = 0; index < parts; index++) text += `--${boundary}\r\nContent-Type: text/plain\r\n\r\npart ${index}\r\n`;
  return `${text}--${boundary}--\r\n`;
}

export function deepEntity(depth: number, viaRfc822 = false): string {
  let text = 'Content-Type: text/plain\r\n\r\ninnermost\r\n';
  for (let level = depth; level > 0; level--) {
    if (viaRfc822) {
      text = `Content-Type: message/rfc822\r\n\r\nSubject: level ${level}\r\nMIME-Version: 1.0\r\n${text}`;
    } else {
      const boundary = `deep-${level}`;
      text = `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n--${boundary}\r\n${text}\r\n--${boundary}--\r\n`;
    }
  }
  return text;
}

async function makeSeeds(gpg: GpgHome, posterFingerprint: string, listFingerprints: string[], maxMessageBytes: number): Promise<Seeds> {
  const recipients = listFingerprints;
  const zeros = Buffer.alloc(70 * 1024 * 1024);
  const [signedEncrypted, binaryEncrypted, encryptedOnly, encryptedManyParts, encryptedDeep, bomb, signedBomb, detachedSignature, clearsigned] =
    await Promise.all([
      gpg.encrypt(seedEntity, { recipients, signer: posterFingerprint }),
      gpg.encrypt(seedEntity, { recipients, signer: posterFingerprint, armor: false }),
      gpg.encrypt(seedEntity, { recipients }),
      gpg.encrypt(manyPartsEntity(10_000), { recipients, signer: posterFingerprint }),
      gpg.encrypt(deepEntity(100), { recipients, signer: posterFingerprint }),
      gpg.encrypt(zeros, { recipients, signer: posterFingerprint, compressAlgo: 'zlib', compressLevel: 9 }),
      gpg.sign(zeros, posterFingerprint, ['--compress-algo', 'zlib', '-z', '9']),
      gpg.detachSign(seedEntity, posterFingerprint, ['--digest-algo', 'SHA256']),
      gpg.clearsign('XSA-000: a clearsigned fuzz seed.\nNothing here is real.\n', posterFingerprint),
    ]);
  return {
    maxMessageBytes,
    signedEncrypted,
    binaryEncrypted,
    encryptedOnly,
    encryptedManyParts,
    encryptedDeep,
    bomb,
    signedBomb,
    detachedEntity: seedEntity,
    detachedSignature,
    clearsigned,
  };
}

// ─── message generators ───────────────────────────────────────────────────────────────────────────

export interface FuzzMessage {
  kind: string;
  variant: string;
  from: string;
  to: string;
  raw: Buffer;
  /** 'stored': 250 expected; 'too-big': 552 expected. */
  expect: 'stored' | 'too-big';
}

const crlf = (text: string) => text.replace(/\r?\n/g, '\r\n');

function head(r: Random, to: string, extra = ''): string {
  return (
    `From: ${r.pick([poster, member, outsider, `"Someone" <${outsider}>`])}\r\n` +
    `To: ${to}\r\n` +
    `Subject: fuzz ${r.token(6)}\r\n` +
    `Date: ${new Date().toUTCString()}\r\n` +
    `Message-ID: <fuzz.${r.token(16)}@fuzz.example>\r\n` +
    'MIME-Version: 1.0\r\n' +
    extra
  );
}

function pgpMime(r: Random, to: string, armored: Buffer | string, options: { cte?: string; encode?: (text: string) => string } = {}): Buffer {
  const boundary = `enc-${r.token(10)}`;
  const body = crlf(typeof armored === 'string' ? armored : armored.toString('latin1'));
  return Buffer.from(
    head(r, to) +
      `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
      `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
      `--${boundary}\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n${options.cte ? `Content-Transfer-Encoding: ${options.cte}\r\n` : ''}\r\n` +
      `${options.encode ? options.encode(body) : body}\r\n--${boundary}--\r\n`,
    'latin1',
  );
}

function inline(r: Random, to: string, text: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from(head(r, to, 'Content-Type: text/plain; charset=us-ascii\r\n\r\n')), typeof text === 'string' ? Buffer.from(crlf(text), 'latin1') : text, Buffer.from('\r\n')]);
}

// CRC-24 of RFC 4880 6.1, so mutated packets can be armored like a client would (only src/crypto imports openpgp).
function crc24(data: Buffer): number {
  let crc = 0xb704ce;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let bit = 0; bit < 8; bit++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

export function armor(data: Buffer, badChecksum = false): string {
  const lines = data.toString('base64').match(/.{1,64}/g) ?? [];
  const crc = crc24(data) ^ (badChecksum ? 0x5a5a5a : 0);
  const checksum = Buffer.from([(crc >> 16) & 0xff, (crc >> 8) & 0xff, crc & 0xff]).toString('base64');
  return `-----BEGIN PGP MESSAGE-----\r\n\r\n${lines.join('\r\n')}\r\n=${checksum}\r\n-----END PGP MESSAGE-----\r\n`;
}

function cut(r: Random, data: Buffer): Buffer {
  return data.subarray(0, r.int(data.length));
}

function sprinkle(r: Random, data: Buffer, byte: number, times: number): Buffer {
  const out = Buffer.from(data);
  for (let index = 0; index < times; index++) out[r.int(out.length)] = byte;
  return out;
}

let sizeLimitCalls = 0;

type Generator = (r: Random, seeds: Seeds, to: string) => { variant: string; raw: Buffer; expect?: FuzzMessage['expect'] };

export const generators: Record<string, Generator> = {
  'truncated-mime'(r, seeds, to) {
    const whole = r.chance(0.5) ? pgpMime(r, to, seeds.signedEncrypted) : multipartSigned(r, seeds, to);
    return { variant: r.chance(0.5) ? 'pgp-mime' : 'signed', raw: cut(r, whole) };
  },

  'bad-boundary'(r, seeds, to) {
    const armored = seeds.signedEncrypted.toString('latin1');
    const variant = r.pick(['declared-not-used', 'no-boundary-param', 'empty-boundary', 'no-closing', 'unbalanced-quote', 'huge-boundary', 'encrypted-part-missing', 'parts-swapped', 'signed-one-part', 'signed-three-parts', 'child-reuses-parent'] as const);
    const part = `Content-Type: text/plain\r\n\r\nbody\r\n`;
    let contentType = 'multipart/mixed; boundary="declared"';
    let body = `--used\r\n${part}--used--\r\n`;
    switch (variant) {
      case 'declared-not-used':
        break;
      case 'no-boundary-param':
        contentType = 'multipart/mixed';
        body = `--x\r\n${part}--x--\r\n`;
        break;
      case 'empty-boundary':
        contentType = 'multipart/mixed; boundary=""';
        body = `--\r\n${part}----\r\n`;
        break;
      case 'no-closing':
        contentType = 'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"';
        body = `--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n${crlf(armored)}`;
        break;
      case 'unbalanced-quote':
        contentType = 'multipart/mixed; boundary="abc';
        body = `--abc\r\n${part}--abc--\r\n`;
        break;
      case 'huge-boundary': {
        const boundary = 'b'.repeat(5000 + r.int(60_000));
        contentType = `multipart/mixed; boundary="${boundary}"`;
        body = `--${boundary}\r\n${part}--${boundary}--\r\n`;
        break;
      }
      case 'encrypted-part-missing':
        contentType = 'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"';
        body = `--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b--\r\n`;
        break;
      case 'parts-swapped':
        contentType = 'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"';
        body = `--b\r\nContent-Type: application/octet-stream\r\n\r\n${crlf(armored)}\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b--\r\n`;
        break;
      case 'signed-one-part':
        contentType = 'multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256; boundary="s"';
        body = `--s\r\n${crlf(seeds.detachedEntity)}\r\n--s--\r\n`;
        break;
      case 'signed-three-parts':
        contentType = 'multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256; boundary="s"';
        body = `--s\r\n${crlf(seeds.detachedEntity)}\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\n${crlf(seeds.detachedSignature.toString('latin1'))}\r\n--s\r\n${part}--s--\r\n`;
        break;
      case 'child-reuses-parent':
        contentType = 'multipart/mixed; boundary="same"';
        body = `--same\r\nContent-Type: multipart/mixed; boundary="same"\r\n\r\n--same\r\n${part}--same--\r\n--same--\r\n`;
        break;
    }
    return { variant, raw: Buffer.from(head(r, to, `Content-Type: ${contentType}\r\n\r\n`) + body, 'latin1') };
  },

  'many-parts'(r, seeds, to) {
    if (r.chance(0.4)) return { variant: 'encrypted-10000', raw: pgpMime(r, to, seeds.encryptedManyParts) };
    const entity = manyPartsEntity(10_000);
    return { variant: 'clear-10000', raw: Buffer.from(head(r, to) + entity) };
  },

  'deep-nesting'(r, seeds, to) {
    const variant = r.pick(['multipart-100', 'rfc822-100', 'encrypted-100', 'multipart-1000'] as const);
    if (variant === 'encrypted-100') return { variant, raw: pgpMime(r, to, seeds.encryptedDeep) };
    const entity = deepEntity(variant === 'multipart-1000' ? 1000 : 100, variant === 'rfc822-100');
    return { variant, raw: Buffer.from(head(r, to) + entity) };
  },

  'long-header'(r, seeds, to) {
    const mebibyte = 1024 * 1024;
    const variant = r.pick(['subject-1mib', 'folded-1mib', 'from-many-addresses', 'from-name-1mib', 'content-type-param', 'message-id-1mib', 'references-1mib'] as const);
    let extra = '';
    switch (variant) {
      case 'subject-1mib':
        extra = `X-Long: ${'x'.repeat(mebibyte)}\r\nSubject: ${'S'.repeat(mebibyte)}\r\n`;
        break;
      case 'folded-1mib':
        extra = `X-Folded: start\r\n${' folded continuation line of the same header field\r\n'.repeat(Math.ceil(mebibyte / 52))}`;
        break;
      case 'from-many-addresses':
        extra = `Reply-To: ${Array.from({ length: 40_000 }, (_, index) => `a${index}@x.example`).join(', ')}\r\n`;
        return { variant, raw: Buffer.from(`From: ${Array.from({ length: 40_000 }, (_, index) => `"n${index}" <p${index}@x.example>`).join(', ')}\r\n${head(r, to, extra).replace(/^From: [^\r]*\r\n/, '')}Content-Type: text/plain\r\n\r\nbody\r\n`) };
      case 'content-type-param':
        return {
          variant,
          raw: Buffer.from(pgpMime(r, to, seeds.signedEncrypted).toString('latin1').replace('protocol="application/pgp-encrypted";', `protocol="application/pgp-encrypted"; x-padding="${'p'.repeat(mebibyte)}";`), 'latin1'),
        };
      case 'from-name-1mib':
        return { variant, raw: Buffer.from(`From: "${'N'.repeat(mebibyte)}" <${outsider}>\r\n${head(r, to).replace(/^From: [^\r]*\r\n/, '')}Content-Type: text/plain\r\n\r\nbody\r\n`) };
      case 'references-1mib':
        return { variant, raw: Buffer.from(`${head(r, to)}References: ${'<ref@x.example> '.repeat(mebibyte / 16)}\r\nIn-Reply-To: <${'r'.repeat(mebibyte)}@x>\r\nContent-Type: text/plain\r\n\r\nbody\r\n`) };
      case 'message-id-1mib':
        return { variant, raw: Buffer.from(head(r, to).replace(/Message-ID: [^\r]*/, `Message-ID: <${'m'.repeat(mebibyte)}@x>`) + 'Content-Type: text/plain\r\n\r\nbody\r\n') };
    }
    return { variant, raw: Buffer.from(head(r, to, extra) + 'Content-Type: text/plain\r\n\r\nbody\r\n') };
  },

  charset(r, seeds, to) {
    const invalid = [Buffer.from([0xff, 0xfe, 0xfd]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from([0xe2, 0x82])];
    const variant = r.pick(['unknown-charset', 'invalid-utf8-body', 'invalid-utf8-headers', 'bad-encoded-words', 'utf16-odd', 'utf7', 'invalid-utf8-inside-ciphertext-headers'] as const);
    const junk = Buffer.concat(Array.from({ length: 20 }, () => r.pick(invalid)));
    switch (variant) {
      case 'unknown-charset':
        return { variant, raw: Buffer.concat([Buffer.from(head(r, to, `Content-Type: text/plain; charset="x-fuzz-${r.token(4)}"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`)), junk, Buffer.from('\r\n')]) };
      case 'invalid-utf8-body':
        return { variant, raw: Buffer.concat([Buffer.from(head(r, to, 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n')), junk, Buffer.from('\r\n')]) };
      case 'invalid-utf8-headers':
        return {
          variant,
          raw: Buffer.concat([Buffer.from(`From: `), junk, Buffer.from(` <${outsider}>\r\nSubject: `), junk, Buffer.from(`\r\nTo: ${to}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbody\r\n`)]),
        };
      case 'bad-encoded-words':
        return {
          variant,
          raw: Buffer.from(
            head(r, to, 'Content-Type: text/plain\r\n').replace(/Subject: [^\r]*/, 'Subject: =?x-unknown?B?////?= =?utf-8?Q?=FF=FE=C0?= =?utf-8?B?not base64!?= =?utf-16?B?2D3d?= =?=?=') +
              `Comments: =?iso-2022-jp?B?${Buffer.from([0x1b, 0x24, 0x42, 0xff]).toString('base64')}?=\r\n\r\nbody\r\n`,
          ),
        };
      case 'utf16-odd':
        return { variant, raw: Buffer.concat([Buffer.from(head(r, to, 'Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: binary\r\n\r\n')), Buffer.from([0xd8, 0x00, 0x41]), Buffer.from('\r\n')]) };
      case 'utf7':
        return { variant, raw: Buffer.from(head(r, to, 'Content-Type: text/plain; charset=utf-7\r\n\r\n') + '+AGEAYgBj- +ZeVnLIqe- +\r\n') };
      case 'invalid-utf8-inside-ciphertext-headers':
        // Encrypted lists check the ciphertext; the outer part here is the broken one.
        return { variant, raw: Buffer.concat([Buffer.from('Subject: '), junk, Buffer.from('\r\n'), pgpMime(r, to, seeds.signedEncrypted)]) };
    }
  },

  'nul-bytes'(r, seeds, to) {
    const base = r.chance(0.5) ? pgpMime(r, to, seeds.signedEncrypted) : multipartSigned(r, seeds, to);
    const variant = r.pick(['sprinkled', 'in-headers', 'nul-only-body'] as const);
    if (variant === 'sprinkled') return { variant, raw: sprinkle(r, base, 0, 1 + r.int(50)) };
    if (variant === 'in-headers') return { variant, raw: Buffer.from(head(r, to, 'X-Nul\u0000Name: va\u0000lue\r\nContent-Type: text/pl\u0000ain\r\n\r\nbo\u0000dy\r\n'), 'latin1') };
    return { variant, raw: Buffer.concat([Buffer.from(head(r, to, 'Content-Type: text/plain\r\n\r\n')), Buffer.alloc(1000 + r.int(100_000)), Buffer.from('\r\n')]) };
  },

  'broken-transfer-encoding'(r, seeds, to) {
    const variant = r.pick(['base64-garbage', 'base64-truncated', 'qp-broken', 'unknown-cte', 'qp-armor', 'base64-body-text'] as const);
    switch (variant) {
      case 'base64-garbage':
        return { variant, raw: pgpMime(r, to, seeds.signedEncrypted, { cte: 'base64', encode: (text) => `${Buffer.from(text).toString('base64').slice(0, 200)}!!**??\r\n${r.bytes(300).toString('latin1')}\r\n==A=` }) };
      case 'base64-truncated':
        return { variant, raw: pgpMime(r, to, seeds.signedEncrypted, { cte: 'base64', encode: (text) => Buffer.from(text).toString('base64').replace(/.{76}/g, '$&\r\n').slice(0, 1 + r.int(2000)) }) };
      case 'qp-broken':
        return { variant, raw: pgpMime(r, to, seeds.signedEncrypted, { cte: 'quoted-printable', encode: (text) => text.replace(/A/g, '=ZZ').replace(/\r\n/g, '=\r\n') + '=' }) };
      case 'unknown-cte':
        return { variant, raw: pgpMime(r, to, seeds.signedEncrypted, { cte: 'x-fuzz-encoding' }) };
      case 'qp-armor':
        return { variant, raw: pgpMime(r, to, seeds.signedEncrypted, { cte: 'quoted-printable', encode: (text) => text.replace(/=/g, '=3D').replace(/(.{70})/g, '$1=\r\n') }) };
      case 'base64-body-text':
        return { variant, raw: Buffer.from(head(r, to, 'Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n') + `${r.bytes(500).toString('latin1')}\r\n====\r\n`, 'latin1') };
    }
  },

  'armor-garbage'(r, seeds, to) {
    const lines = seeds.signedEncrypted.toString('latin1').split(/\r?\n/);
    const variant = r.pick(['garbage-line', 'no-end-line', 'bad-checksum', 'nul-header', 'double-begin', 'signature-label', 'short-body', 'inline', 'armor-in-armor'] as const);
    const body = lines.findIndex((line) => line === '') + 1;
    const at = body + r.int(Math.max(1, lines.length - body - 3));
    switch (variant) {
      case 'garbage-line':
        lines[at] = r.bytes(40 + r.int(40)).toString('latin1');
        break;
      case 'no-end-line':
        lines.splice(lines.length - 2);
        break;
      case 'bad-checksum':
        lines[lines.length - 3] = '=AAAA';
        break;
      case 'nul-header':
        lines.splice(1, 0, 'Version: \u0000\u0001', 'Comment: ' + 'c'.repeat(10_000));
        break;
      case 'double-begin':
        lines.splice(at, 0, '-----BEGIN PGP MESSAGE-----', '');
        break;
      case 'signature-label':
        lines[0] = '-----BEGIN PGP SIGNATURE-----';
        break;
      case 'short-body':
        lines.splice(body + 1, lines.length - body - 4);
        break;
      case 'inline':
        lines[at] = lines[at].split('').reverse().join('');
        return { variant, raw: inline(r, to, lines.join('\r\n')) };
      case 'armor-in-armor':
        return { variant, raw: pgpMime(r, to, armor(Buffer.from(seeds.signedEncrypted))) };
    }
    return { variant, raw: pgpMime(r, to, lines.join('\r\n')) };
  },

  'packet-lengths'(r, seeds, to) {
    const packets = Buffer.from(seeds.binaryEncrypted);
    const variant = r.pick(['first-length-byte', 'huge-partial-length', 'truncated', 'trailing-garbage', 'bit-flips', 'old-format-indeterminate', 'zero-lengths'] as const);
    let mutated: Buffer = packets;
    switch (variant) {
      case 'first-length-byte':
        mutated[1] = r.int(256);
        break;
      case 'huge-partial-length': {
        // A new-format five-octet length of about 4 GiB in the first packet.
        const header = Buffer.from([0xc1, 0xff, 0xff, 0xff, 0xff, 0xf0]);
        mutated = Buffer.concat([header, packets.subarray(2)]);
        break;
      }
      case 'truncated':
        mutated = cut(r, packets);
        break;
      case 'trailing-garbage':
        mutated = Buffer.concat([packets, r.bytes(1 + r.int(2000))]);
        break;
      case 'bit-flips':
        for (let flip = 0; flip < 1 + r.int(8); flip++) {
          const index = r.int(Math.min(packets.length, 200));
          mutated[index] ^= 1 << r.int(8);
        }
        break;
      case 'old-format-indeterminate':
        // Old-format tag 1 (PKESK) with length type 3 (indeterminate): runs to the end of the data.
        mutated[0] = 0x87;
        break;
      case 'zero-lengths':
        for (let index = 0; index < packets.length; index += 1 + r.int(64)) if (packets[index] & 0x80) mutated[index + 1] = 0;
        break;
    }
    const armored = armor(mutated, r.chance(0.1));
    return { variant, raw: r.chance(0.8) ? pgpMime(r, to, armored) : inline(r, to, armored) };
  },

  'compression-bomb'(r, seeds, to) {
    const variant = r.pick(['encrypted-signed', 'signed-only-inline', 'signed-only-pgp-mime'] as const);
    if (variant === 'encrypted-signed') return { variant, raw: pgpMime(r, to, seeds.bomb) };
    if (variant === 'signed-only-inline') return { variant, raw: inline(r, to, seeds.signedBomb.toString('latin1')) };
    return { variant, raw: pgpMime(r, to, seeds.signedBomb) };
  },

  'size-limit'(r, seeds, to) {
    // Alternates, so even a short run meets the limit from both sides.
    const over = sizeLimitCalls++ % 2 === 0;
    const target = over ? seeds.maxMessageBytes + 1 + r.int(4096) : seeds.maxMessageBytes - r.int(64);
    const boundary = `att-${r.token(8)}`;
    const prefix = head(r, to, `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n`) + `--${boundary}\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n--${boundary}\r\nContent-Type: application/octet-stream; name="blob.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n`;
    const suffix = `\r\n--${boundary}--\r\n`;
    const room = target - prefix.length - suffix.length;
    // 76-character base64 lines plus CRLF: 78 bytes per line; the last line takes what is left.
    const line = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n';
    let filler = line.repeat(Math.floor(room / line.length));
    const rest = room - filler.length;
    if (rest >= 2) filler += 'A'.repeat(rest - 2) + '\r\n';
    else filler = filler.slice(0, filler.length - (2 - rest)) + (rest === 1 ? '\n' : '');
    const raw = Buffer.from(prefix + filler + suffix);
    return { variant: over ? 'over-limit' : 'at-limit', raw, expect: over ? 'too-big' : 'stored' };
  },

  'header-garbage'(r, seeds, to) {
    const variant = r.pick(['no-separator', 'no-colons', 'ten-thousand-headers', 'many-from', 'continuation-first', 'empty-message', 'only-crlf', 'bad-dates-and-ids'] as const);
    switch (variant) {
      case 'no-separator':
        return { variant, raw: Buffer.from(head(r, to) + 'Content-Type: text/plain') };
      case 'no-colons':
        return { variant, raw: Buffer.from('this is not a header\r\nnor is this\r\n\r\nbody\r\n') };
      case 'ten-thousand-headers':
        return { variant, raw: Buffer.from(head(r, to) + Array.from({ length: 10_000 }, (_, index) => `X-H${index}: v`).join('\r\n') + '\r\n\r\nbody\r\n') };
      case 'many-from':
        return { variant, raw: Buffer.from(Array.from({ length: 500 }, (_, index) => `From: p${index}@x.example`).join('\r\n') + `\r\n${head(r, to)}\r\nbody\r\n`) };
      case 'continuation-first':
        return { variant, raw: Buffer.from(`  folded first line\r\n${head(r, to)}\r\nbody\r\n`) };
      case 'empty-message':
        return { variant, raw: Buffer.alloc(0) };
      case 'only-crlf':
        return { variant, raw: Buffer.from('\r\n'.repeat(1 + r.int(1000))) };
      case 'bad-dates-and-ids':
        return {
          variant,
          raw: Buffer.from(
            head(r, to).replace(/Date: [^\r]*/, 'Date: Feb 31 99999 25:61:61 +9999').replace(/Message-ID: [^\r]*/, `Message-ID: <<<${r.token(5)}@@>`) +
              'In-Reply-To: <<>>\r\nReferences: ' + '<a@b> '.repeat(5000) + '\r\nX-Embargo-Until: 2999-99-99T99:99\r\nContent-Type: text/plain\r\n\r\nbody\r\n',
          ),
        };
    }
  },

  'random-bytes'(r) {
    return { variant: 'random', raw: r.bytes(r.int(64 * 1024)) };
  },

  'hostile-html'(r, seeds, to) {
    const html = `<html><body onload="alert(1)"><script>alert(document.cookie)</script><iframe src="javascript:alert(1)"></iframe><img src=x onerror=alert(1)><a href="javascript:alert(1)">x</a><style>*{background:url(javascript:alert(1))}</style><svg><script>alert(1)</script></svg><object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="></object>${'<div>'.repeat(5000)}</body></html>`;
    const boundary = `alt-${r.token(6)}`;
    const raw = head(r, to, `Content-Type: multipart/alternative; boundary="${boundary}"\r\n\r\n`) + `--${boundary}\r\nContent-Type: text/plain\r\n\r\nplain text\r\n--${boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${html}\r\n--${boundary}--\r\n`;
    return { variant: 'script-and-deep-divs', raw: Buffer.from(raw) };
  },

  'broken-signatures'(r, seeds, to) {
    const variant = r.pick(['signature-garbage', 'signature-of-other-text', 'clearsigned-mangled', 'clearsigned-ok', 'signed-encrypted-ok'] as const);
    switch (variant) {
      case 'signature-garbage':
        return { variant, raw: multipartSigned(r, seeds, to, sprinkle(r, seeds.detachedSignature, 0x41, 5)) };
      case 'signature-of-other-text':
        return { variant, raw: multipartSigned(r, seeds, to, seeds.detachedSignature, seeds.detachedEntity.replace('fuzz', 'FUZZ')) };
      case 'clearsigned-mangled':
        return { variant, raw: inline(r, to, seeds.clearsigned.toString('latin1').replace('real', 'REAL')) };
      case 'clearsigned-ok':
        return { variant, raw: inline(r, to, seeds.clearsigned) };
      case 'signed-encrypted-ok':
        return { variant, raw: pgpMime(r, to, r.chance(0.5) ? seeds.signedEncrypted : seeds.encryptedOnly) };
    }
  },
};

function multipartSigned(r: Random, seeds: Seeds, to: string, signature: Buffer = seeds.detachedSignature, entity: string = seeds.detachedEntity): Buffer {
  const boundary = `sig-${r.token(10)}`;
  return Buffer.from(
    head(r, to, `Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="${boundary}"\r\n\r\n`) +
      `--${boundary}\r\n${crlf(entity)}\r\n--${boundary}\r\nContent-Type: application/pgp-signature; name="signature.asc"\r\n\r\n${crlf(signature.toString('latin1'))}\r\n--${boundary}--\r\n`,
    'latin1',
  );
}

const weights: Record<string, number> = {
  'truncated-mime': 8,
  'bad-boundary': 8,
  'many-parts': 2,
  'deep-nesting': 3,
  'long-header': 2,
  charset: 6,
  'nul-bytes': 6,
  'broken-transfer-encoding': 6,
  'armor-garbage': 8,
  'packet-lengths': 10,
  'compression-bomb': 3,
  'size-limit': 1,
  'header-garbage': 6,
  'random-bytes': 4,
  'hostile-html': 3,
  'broken-signatures': 6,
};

function pickKind(r: Random): string {
  const total = Object.values(weights).reduce((sum, weight) => sum + weight, 0);
  let point = r.next() * total;
  for (const [kind, weight] of Object.entries(weights)) {
    point -= weight;
    if (point < 0) return kind;
  }
  return 'random-bytes';
}

/** Every list kind and every role address: the post address most often. */
function pickRecipient(r: Random): string {
  const list = r.pick([lists.announce, lists.discussion, lists.public]);
  const roles = ['', '', '', '', '', '', '-request', '-owner', '-sendkey', '-bounces', `-bounces+${r.token(3)}-${r.token(12)}`];
  return `${list}${r.pick(roles)}@${domain}`;
}

export function generateMessage(r: Random, seeds: Seeds, index: number, only?: string[]): FuzzMessage {
  // The first messages walk through every generator once, so even a short run covers each kind.
  const kinds = only ?? Object.keys(generators);
  const kind = index < kinds.length ? kinds[index] : only ? r.pick(only) : pickKind(r);
  const to = pickRecipient(r);
  const made = generators[kind](r, seeds, to);
  const from = r.pick([poster, member, outsider, outsider, '']);
  return { kind, variant: made.variant, from, to, raw: made.raw, expect: made.expect ?? 'stored' };
}

/** The bytes the spool should hold for a message sent with the test client (CRLF line ends, dot-stuffing undone). */
export function expectedSpoolBytes(raw: Buffer): Buffer {
  let text = raw.toString('latin1').replace(/\r?\n/g, '\r\n');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text, 'latin1');
}

// ─── the run ──────────────────────────────────────────────────────────────────────────────────────

function rssOf(pid: number): { rss: number; hwm: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const read = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: read('VmRSS'), hwm: read('VmHWM') };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

const bump = (record: Record<string, number>, key: string, by = 1) => {
  record[key] = (record[key] ?? 0) + by;
};

/** "stage: code" for a post, the role's first words otherwise; per-message ids and numbers taken out. */
function reasonKey(reason: string | null): string {
  if (!reason) return '(none)';
  const first = reason.split('; ')[0].replace(/^[a-z0-9._-]+: /, '');
  const words = first.split(': ').slice(0, 2).join(': ');
  return words.replace(/\b[0-9A-Z]{15}\b/g, 'ID').replace(/\d+/g, 'N').slice(0, 70);
}

interface SentRecord {
  id: string;
  kind: string;
  variant: string;
  expected: Buffer;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const concurrency = options.concurrency ?? 8;
  const maxMessageBytes = options.maxMessageBytes ?? 3 * 1024 * 1024;
  const progress = options.progress ?? (() => undefined);
  const random = new Random(seed);
  const started = performance.now();

  const gpg = await createGpgHome();
  let config: TestConfig | null = null;
  let daemon: TestDaemon | null = null;
  const relay = await startRelayPeer({ discardBodies: true });
  const report: FuzzReport = {
    seed,
    sent: 0,
    seconds: 0,
    replies: {},
    unexpectedReplies: [],
    states: {},
    reasons: {},
    byKind: {},
    shunted: [],
    stuck: [],
    rawMismatches: [],
    rawChecked: 0,
    crashes: 0,
    crashLogs: [],
    errorLogs: {},
    slowest: [],
    peakRssMiB: 0,
    highWaterRssMiB: 0,
    pipelineRate: 0,
    pipelineProcessed: 0,
    pipelineSeconds: 0,
    relayMessages: 0,
  };
  let sampler: NodeJS.Timeout | null = null;
  let database: Database.Database | null = null;
  const allLogs: LogLine[][] = [];
  try {
    // One after the other: two gpg processes writing one keybox at once fail now and then.
    const posterKey = await gpg.generateKey({ address: poster, name: 'Xen Security Team' });
    const memberKey = await gpg.generateKey({ address: member, name: 'Vendor A PSIRT' });
    const keyFiles = {
      'keys/poster.asc': await gpg.exportPublic(posterKey.fingerprint),
      'keys/member.asc': await gpg.exportPublic(memberKey.fingerprint),
    };
    const members = [
      { email: poster, key: '../keys/poster.asc', roles: ['poster', 'recipient', 'moderator', 'admin'] },
      { email: member, key: '../keys/member.asc', roles: ['recipient'] },
    ];
    config = makeTestConfig({
      relay: { host: relay.host, port: relay.port },
      removeLists: ['xen-security-issues', 'xen-security-issues-discuss', 'predisclosure-applications'],
      server: {
        admins: [admin],
        relay: { retrySchedule: [1] },
        smtp: {
          maxMessageBytes,
          maxRecipients: 50,
          socketTimeoutSeconds: 60,
          // The fuzz tests what the pipeline makes of malformed mail, so intake takes all of it (no backlog caps).
          rateLimit: {
            connectionsPerMinute: 1_000_000,
            messagesPerMinute: 1_000_000,
            maxConcurrentConnections: 1000,
            maxBacklogPerAddress: 1_000_000,
            maxBacklog: 1_000_000,
          },
        },
      },
      lists: {
        [lists.announce]: stringify({ description: 'Fuzz announce', kind: 'announce', archive: 'private', members }),
        [lists.discussion]: stringify({ description: 'Fuzz discussion', kind: 'discussion', archive: 'private', moderated: true, members }),
        [lists.public]: stringify({ description: 'Fuzz public', kind: 'public', archive: 'public', postsPerHourPerSender: 1_000_000, members: [members[0]] }),
      },
      files: keyFiles,
    });
    const testConfig = config;
    const start = async () => {
      const next = await startTestDaemon({ mode: 'child', config: testConfig, startTimeoutMs: 60_000 });
      allLogs.push(next.logs());
      next.child!.once('exit', (code, signal) => {
        if (daemon === next && !stopping) {
          report.crashes++;
          report.crashLogs.push(`exit ${code ?? signal}; last lines:\n${next.logs().slice(-5).map((line) => JSON.stringify(line)).join('\n')}`);
          progress(`daemon died (${code ?? signal}); restarting`);
          restarting = start().then((restarted) => {
            daemon = restarted;
          });
        }
      });
      return next;
    };
    let stopping = false;
    let restarting: Promise<void> | null = null;
    daemon = await start();
    progress(`daemon pid ${daemon.child!.pid}, smtp port ${daemon.smtpPort}`);

    const listFingerprints: string[] = [];
    for (const name of [lists.announce, lists.discussion]) {
      const key = await ensureListKey({ dataDir: testConfig.dataDir, listName: name, domain });
      await gpg.importKey(key.armoredPublicKey);
      listFingerprints.push(key.fingerprint);
    }
    const seeds = await makeSeeds(gpg, posterKey.fingerprint, listFingerprints, maxMessageBytes);
    progress(`seeds ready (${Math.round(performance.now() - started)} ms); sending ${options.count} messages over ${concurrency} connections, seed ${seed}`);

    sampler = setInterval(() => {
      const pid = daemon?.child?.pid;
      if (!pid) return;
      const { rss } = rssOf(pid);
      report.peakRssMiB = Math.max(report.peakRssMiB, rss / 1024 / 1024);
    }, 100);
    sampler.unref();

    const sent: SentRecord[] = [];
    let next = 0;
    const sendStarted = performance.now();
    const worker = async () => {
      let client: SmtpClient | null = null;
      while (next < options.count) {
        const index = next++;
        const message = generateMessage(random, seeds, index, options.kinds);
        let code = 0;
        let text = '';
        try {
          if (restarting) await restarting;
          if (!client || client.closed) {
            client = await SmtpClient.connect(daemon!.smtpPort, '127.0.0.1', { timeoutMs: 60_000 });
            await client.ehlo();
          }
          const result = await sendMail({ port: daemon!.smtpPort, from: message.from, to: [message.to], raw: message.raw, client });
          code = result.code;
          text = result.text;
          if (result.ok && result.spoolId) sent.push({ id: result.spoolId, kind: message.kind, variant: message.variant, expected: expectedSpoolBytes(message.raw) });
          if (!result.ok && result.stage !== 'data') await client.command('RSET');
        } catch (error) {
          text = errorMessage(error);
          client?.destroy();
          client = null;
        }
        report.sent++;
        bump(report.replies, String(code));
        const kindStats = (report.byKind[message.kind] ??= {});
        bump(kindStats, 'sent');
        bump(kindStats, `smtp ${code}`);
        const expectedCode = message.expect === 'stored' ? 250 : 552;
        if (code !== expectedCode) report.unexpectedReplies.push({ kind: message.kind, variant: message.variant, code, text: text.slice(0, 200) });
        if (report.sent % 250 === 0) progress(`${report.sent} sent, ${Math.round((performance.now() - sendStarted) / 1000)} s`);
      }
      await client?.quit().catch(() => undefined);
    };
    await Promise.all(Array.from({ length: concurrency }, () => worker()));
    progress(`all ${report.sent} sent in ${Math.round((performance.now() - sendStarted) / 1000)} s; waiting for the pipeline`);

    // Every spooled message must reach a final state: nothing may stay queued or processing.
    database = new Database(testConfig.dbFile, { readonly: true, fileMustExist: true });
    const busy = database.prepare(`SELECT COUNT(*) AS count FROM spool WHERE state IN ('queued', 'processing')`);
    // At least 3 minutes, and 40 ms a message: 10,000 messages get almost 7 minutes to drain.
    const deadline = Date.now() + (options.settleTimeoutMs ?? Math.max(180_000, options.count * 40));
    let lastReport = Date.now();
    for (;;) {
      const { count } = busy.get() as { count: number };
      if (count === 0 || Date.now() > deadline) break;
      if (Date.now() - lastReport > 10_000) {
        progress(`${count} messages still in the pipeline`);
        lastReport = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const rowOf = database.prepare('SELECT state, reason, raw FROM spool WHERE id = ?');
    for (const record of sent) {
      const row = rowOf.get(record.id) as { state: string; reason: string | null; raw: Buffer } | undefined;
      const kindStats = (report.byKind[record.kind] ??= {});
      if (!row) {
        report.rawMismatches.push({ id: record.id, kind: record.kind, variant: record.variant });
        bump(kindStats, 'missing');
        continue;
      }
      bump(report.states, row.state);
      bump(kindStats, row.state);
      bump(report.reasons, `${row.state}: ${reasonKey(row.reason)}`);
      if (row.state === 'shunted') report.shunted.push({ id: record.id, kind: record.kind, variant: record.variant, reason: row.reason });
      if (row.state === 'queued' || row.state === 'processing') report.stuck.push({ id: record.id, kind: record.kind, variant: record.variant, state: row.state });
      report.rawChecked++;
      // Below intake's own Received field, byte for byte what was sent.
      if (ownTraceLength(row.raw, record.id) === 0 || !asSent(row.raw, record.id).equals(record.expected)) report.rawMismatches.push({ id: record.id, kind: record.kind, variant: record.variant });
    }
    if (restarting) await restarting;
    const pid = daemon.child!.pid!;
    report.highWaterRssMiB = rssOf(pid).hwm / 1024 / 1024;
    const byId = new Map(sent.map((record) => [record.id, record]));
    const timings: FuzzReport['slowest'] = [];
    const processedAt: number[] = [];
    for (const lines of allLogs) {
      for (const line of lines) {
        if ((line.level ?? 0) >= 50) bump(report.errorLogs, String(line.msg));
        const record = line.msg === 'message processed' ? byId.get(String(line.spoolId)) : undefined;
        if (record) timings.push({ id: record.id, kind: record.kind, variant: record.variant, ms: Number(line.ms) });
        if (record && typeof line.time === 'number') processedAt.push(line.time);
      }
    }
    if (processedAt.length > 1) {
      report.pipelineProcessed = processedAt.length;
      report.pipelineSeconds = (Math.max(...processedAt) - Math.min(...processedAt)) / 1000;
      report.pipelineRate = report.pipelineSeconds > 0 ? (processedAt.length - 1) / report.pipelineSeconds : 0;
    }
    report.slowest = timings.sort((a, b) => b.ms - a.ms).slice(0, 3);
    report.relayMessages = relay.messages.length;
    stopping = true;
  } finally {
    if (sampler) clearInterval(sampler);
    database?.close();
    await daemon?.stop({ keepFiles: true }).catch(() => undefined);
    config?.cleanup();
    await relay.close();
    await gpg.cleanup();
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

export function formatReport(report: FuzzReport): string {
  const counts = (record: Record<string, number>) =>
    Object.entries(record)
      .sort((a, b) => b[1] - a[1])
      .map(([key, value]) => `${key} ×${value}`)
      .join(', ');
  const lines = [
    `embargo fuzz: seed ${report.seed}, ${report.sent} messages, ${report.seconds.toFixed(1)} s`,
    `messages sent:      ${report.sent}`,
    `SMTP replies:       ${counts(report.replies)}`,
    `unexpected replies: ${report.unexpectedReplies.length}${report.unexpectedReplies.length ? ` (${report.unexpectedReplies.slice(0, 5).map((entry) => `${entry.kind}/${entry.variant}: ${entry.code} ${entry.text}`).join('; ')})` : ''}`,
    `pipeline outcomes:  ${counts(report.states)}`,
    'outcomes by reason:',
    ...Object.entries(report.reasons)
      .sort((a, b) => b[1] - a[1])
      .map(([key, value]) => `  ${String(value).padStart(6)}  ${key}`),
    'by kind (sent; SMTP replies; final states):',
    ...Object.entries(report.byKind)
      .sort((a, b) => a[0].localeCompare(b[0]))
      .map(([kind, stats]) => `  ${kind.padEnd(26)} ${Object.entries(stats).map(([key, value]) => `${key} ${value}`).join(', ')}`),
    `shunted (bugs):     ${report.shunted.length}${report.shunted.length ? ` ${JSON.stringify(report.shunted.slice(0, 10))}` : ''}`,
    `stuck in pipeline:  ${report.stuck.length}${report.stuck.length ? ` ${JSON.stringify(report.stuck.slice(0, 10))}` : ''}`,
    `raw bytes kept:     ${report.rawChecked - report.rawMismatches.length} of ${report.rawChecked + report.rawMismatches.filter((entry) => !entry.id).length} spooled messages byte for byte${report.rawMismatches.length ? ` (mismatches: ${JSON.stringify(report.rawMismatches.slice(0, 10))})` : ''}`,
    `crashes:            ${report.crashes}${report.crashLogs.length ? `\n${report.crashLogs.join('\n')}` : ''}`,
    `error log lines:    ${Object.keys(report.errorLogs).length ? counts(report.errorLogs) : 0}`,
    `pipeline rate:      ${report.pipelineRate.toFixed(0)} messages/s (${report.pipelineProcessed} processed in ${report.pipelineSeconds.toFixed(1)} s, first to last)`,
    `slowest in pipeline: ${report.slowest.map((entry) => `${entry.ms} ms (${entry.kind}/${entry.variant})`).join(', ')}`,
    `peak RSS (daemon):  ${report.peakRssMiB.toFixed(0)} MiB sampled every 100 ms; kernel high-water mark ${report.highWaterRssMiB.toFixed(0)} MiB`,
    `relay received:     ${report.relayMessages} messages (copies, bounces, notices)`,
  ];
  return lines.join('\n');
}

/** No single message may hold the pipeline longer than this (every other list waits behind it). */
export const maxPipelineMs = 10_000;

/** True when the run found nothing wrong. */
export function fuzzPassed(report: FuzzReport): boolean {
  return (report.slowest[0]?.ms ?? 0) < maxPipelineMs && report.crashes === 0 && report.shunted.length === 0 && report.stuck.length === 0 && report.rawMismatches.length === 0 && report.unexpectedReplies.length === 0;
}

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(argument('count') ?? 1000);
  const seedText = argument('seed');
  const concurrency = Number(argument('concurrency') ?? 8);
  const kinds = argument('kinds')?.split(',');
  const unknown = kinds?.filter((kind) => !(kind in generators)) ?? [];
  if (unknown.length > 0) {
    console.error(`unknown kinds: ${unknown.join(', ')}; known: ${Object.keys(generators).join(', ')}`);
    process.exit(2);
  }
  if (!Number.isInteger(count) || count <= 0 || !Number.isInteger(concurrency) || concurrency <= 0 || (seedText !== undefined && !/^\d+$/.test(seedText))) {
    console.error('usage: npm run fuzz -- [--count N] [--seed S] [--concurrency C] [--kinds KIND,KIND]');
    process.exit(2);
  }
  const report = await runFuzz({ count, seed: seedText === undefined ? undefined : Number(seedText), concurrency, kinds, progress: (line) => console.error(`fuzz: ${line}`) });
  console.log(formatReport(report));
  process.exit(fuzzPassed(report) ? 0 : 1);
}
