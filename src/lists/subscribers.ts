// Public-list subscribers who joined by mail, with double opt-in tokens for subscribe and unsubscribe.
import { randomBytes } from 'node:crypto';
import type { Db } from '../store/database.ts';

export type SubscriptionAction = 'subscribe' | 'unsubscribe';

/** How long a confirmation token stays valid. */
export const tokenLifetimeMs = 3 * 24 * 3_600_000;

export function confirmedSubscribers(db: Db, list: string): string[] {
  return (db.prepare('SELECT address FROM subscribers WHERE list = ? ORDER BY address').all(list) as Array<{ address: string }>).map(
    (row) => row.address,
  );
}

export function isSubscribed(db: Db, list: string, address: string): boolean {
  return db.prepare('SELECT 1 FROM subscribers WHERE list = ? AND address = ?').get(list, address.toLowerCase()) !== undefined;
}

/** Tokens are random (120 bits) and single-use. */
export function newToken(): string {
  return randomBytes(15).toString('hex');
}

/** Stores a pending action under its token (and forgets expired ones). */
export function insertToken(db: Db, pending: { token: string; list: string; address: string; action: SubscriptionAction; now: number }): void {
  db.prepare('DELETE FROM subscription_tokens WHERE expires_at < ?').run(pending.now);
  db.prepare(
    'INSERT INTO subscription_tokens (token, list, address, action, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
  ).run(pending.token, pending.list, pending.address.toLowerCase(), pending.action, pending.now, pending.now + tokenLifetimeMs);
}

export interface PendingAction {
  token: string;
  address: string;
  action: SubscriptionAction;
  expiresAt: number;
}

export function findToken(db: Db, list: string, token: string): PendingAction | null {
  const row = db.prepare('SELECT token, address, action, expires_at FROM subscription_tokens WHERE token = ? AND list = ?').get(token.toLowerCase(), list) as
    | { token: string; address: string; action: SubscriptionAction; expires_at: number }
    | undefined;
  return row ? { token: row.token, address: row.address, action: row.action, expiresAt: row.expires_at } : null;
}

/** Carries out a confirmed action and uses up its token. */
export function applyToken(db: Db, list: string, pending: PendingAction, now: number): void {
  db.prepare('DELETE FROM subscription_tokens WHERE token = ?').run(pending.token);
  if (pending.action === 'subscribe') {
    db.prepare('INSERT OR IGNORE INTO subscribers (list, address, subscribed_at) VALUES (?, ?, ?)').run(list, pending.address, now);
  } else {
    db.prepare('DELETE FROM subscribers WHERE list = ? AND address = ?').run(list, pending.address);
  }
}
