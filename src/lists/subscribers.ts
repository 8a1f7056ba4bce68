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

/** A new token for a pending action; tokens are random (120 bits) and single-use. */
export function createToken(db: Db, list: string, address: string, action: SubscriptionAction, now: number): string {
  const token = randomBytes(15).toString('hex');
  db.prepare('DELETE FROM subscription_tokens WHERE expires_at < ?').run(now);
  db.prepare(
    'INSERT INTO subscription_tokens (token, list, address, action, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
  ).run(token, list, address.toLowerCase(), action, now, now + tokenLifetimeMs);
  return token;
}

export type ConfirmResult =
  | { ok: true; action: SubscriptionAction; address: string }
  | { ok: false; reason: 'unknown-token' | 'expired' };

/** Carries out the action a token stands for, once. */
export function confirmToken(db: Db, list: string, token: string, now: number): ConfirmResult {
  return db.transaction((): ConfirmResult => {
    const row = db.prepare('SELECT address, action, expires_at FROM subscription_tokens WHERE token = ? AND list = ?').get(token.toLowerCase(), list) as
      | { address: string; action: SubscriptionAction; expires_at: number }
      | undefined;
    if (!row) return { ok: false, reason: 'unknown-token' };
    db.prepare('DELETE FROM subscription_tokens WHERE token = ?').run(token.toLowerCase());
    if (row.expires_at < now) return { ok: false, reason: 'expired' };
    if (row.action === 'subscribe') {
      db.prepare('INSERT OR IGNORE INTO subscribers (list, address, subscribed_at) VALUES (?, ?, ?)').run(list, row.address, now);
    } else {
      db.prepare('DELETE FROM subscribers WHERE list = ? AND address = ?').run(list, row.address);
    }
    return { ok: true, action: row.action, address: row.address };
  })();
}
