// VERP return paths: NAME-bounces+TOKEN@DOMAIN, where TOKEN names an outbound row and carries an HMAC nobody else can make.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** 20 hex digits = 80 bits of MAC: far beyond guessing by sending mail, short enough for a local part. */
const macHexLength = 20;
const secretFileName = 'secret';

/**
 * Reads the server secret from `dataPath/secret`, creating it (32 random bytes, hex, mode 0600) on first start.
 * Creation is atomic (write a temporary file, then link it into place) so two processes starting together agree.
 */
export function loadOrCreateServerSecret(dataPath: string): Buffer {
  const file = join(dataPath, secretFileName);
  const existing = readSecret(file);
  if (existing) return existing;

  mkdirSync(dataPath, { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const descriptor = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(descriptor, randomBytes(32).toString('hex') + '\n');
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
  try {
    linkSync(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temporary);
  }
  const created = readSecret(file);
  if (!created) throw new Error(`server secret ${file} is unreadable or too short`);
  return created;
}

function readSecret(file: string): Buffer | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  if (!/^[0-9a-f]{64,}$/i.test(text)) throw new Error(`server secret ${file} must hold at least 64 hex digits`);
  return Buffer.from(text, 'hex');
}

function mac(secret: Buffer, rowId: number): string {
  return createHmac('sha256', secret).update(`embargo-verp:${rowId}`).digest('hex').slice(0, macHexLength);
}

/** The TOKEN of NAME-bounces+TOKEN@: decimal row id, a dash, the truncated MAC. Lower case, since local parts get folded. */
export function verpToken(secret: Buffer, rowId: number): string {
  return `${rowId}-${mac(secret, rowId)}`;
}

/** The row id a token names, or null when the token is malformed or its MAC does not match (forged or from another server). */
export function parseVerpToken(secret: Buffer, token: string): number | null {
  const match = /^([1-9][0-9]{0,15})-([0-9a-f]+)$/.exec(token.trim().toLowerCase());
  if (!match) return null;
  const rowId = Number(match[1]);
  if (!Number.isSafeInteger(rowId)) return null;
  const given = Buffer.from(match[2], 'utf8');
  const expected = Buffer.from(mac(secret, rowId), 'utf8');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  return rowId;
}

/** The envelope sender for one outbound row. */
export function verpAddress(secret: Buffer, list: string, domain: string, rowId: number): string {
  return `${list}-bounces+${verpToken(secret, rowId)}@${domain}`;
}
