// Guards the web subscribe form: CSRF tokens tied to a same-site cookie, and rate limits per address and per client IP.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A form is good for this long after the list page was loaded. */
export const formLifetimeMs = 2 * 3_600_000;
/** Confirmation mails one address can be sent from the web form per hour (mail to -request@ is limited apart). */
export const requestsPerAddressPerHour = 3;
/** Form posts one client IP can make per hour. */
export const requestsPerIpPerHour = 10;
export const csrfCookie = 'embargo_form';

const hourMs = 3_600_000;

export type FormCheck = { ok: true } | { ok: false; status: 400 | 403 | 429; reason: string };

export interface SubscribeGuard {
  /** A fresh form: the token for its hidden field and the cookie value the browser must send back with it. */
  issue(list: string): { token: string; cookie: string };
  /** Whether a post carries a token this server issued for this list, recently, to the browser holding the cookie. */
  verify(list: string, token: string, cookie: string | undefined): FormCheck;
  /** Counts one request for the address and IP, or refuses it when either reached its hourly limit. */
  take(address: string, ip: string): FormCheck;
}

/** Events per key in a sliding hour. */
class HourlyCounter {
  private readonly events = new Map<string, number[]>();

  constructor(private readonly limit: number) {}

  allows(key: string, now: number): boolean {
    const recent = (this.events.get(key) ?? []).filter((time) => time > now - hourMs);
    this.events.set(key, recent);
    return recent.length < this.limit;
  }

  record(key: string, now: number): void {
    this.events.get(key)!.push(now);
    // Forget keys idle for an hour, so the map does not keep every address ever typed.
    if (this.events.size > 10_000) for (const [other, times] of this.events) if (times.every((time) => time <= now - hourMs)) this.events.delete(other);
  }
}

/**
 * The secret lives in memory only: a restart makes forms older than it invalid, which costs a reader a reload.
 * The token is `issuedAt.nonce.mac`; the nonce is also the cookie's value (a double-submit cookie), so a page on
 * another site cannot post a token it fetched itself: the victim's browser holds a different cookie, or none
 * (SameSite=Strict sends none on a cross-site post).
 */
export function createSubscribeGuard(now: () => number = Date.now, secret: Buffer = randomBytes(32)): SubscribeGuard {
  const perAddress = new HourlyCounter(requestsPerAddressPerHour);
  const perIp = new HourlyCounter(requestsPerIpPerHour);
  const mac = (list: string, issuedAt: string, nonce: string) =>
    createHmac('sha256', secret).update(`subscribe\n${list}\n${issuedAt}\n${nonce}`).digest('base64url');

  return {
    issue(list) {
      const issuedAt = String(now());
      const nonce = randomBytes(16).toString('base64url');
      return { token: `${issuedAt}.${nonce}.${mac(list, issuedAt, nonce)}`, cookie: nonce };
    },
    verify(list, token, cookie) {
      const [issuedAt = '', nonce = '', given = ''] = token.split('.');
      const expected = Buffer.from(mac(list, issuedAt, nonce));
      if (!/^\d{1,15}$/.test(issuedAt) || Buffer.byteLength(given) !== expected.length || !timingSafeEqual(Buffer.from(given), expected)) {
        return { ok: false, status: 403, reason: 'This form was not issued by this server. Reload the list page and try again.' };
      }
      if (now() - Number(issuedAt) > formLifetimeMs) return { ok: false, status: 403, reason: 'This form has expired. Reload the list page and try again.' };
      if (cookie !== nonce) return { ok: false, status: 403, reason: 'This form belongs to another browser session. Reload the list page and try again (cookies must be allowed for this site).' };
      return { ok: true };
    },
    take(address, ip) {
      const time = now();
      const key = address.toLowerCase();
      // A refused request counts against neither limit.
      if (!perIp.allows(ip, time)) return { ok: false, status: 429, reason: 'Too many requests from your network. Try again in an hour.' };
      if (!perAddress.allows(key, time)) return { ok: false, status: 429, reason: 'Too many confirmation requests for this address. Try again in an hour.' };
      perIp.record(ip, time);
      perAddress.record(key, time);
      return { ok: true };
    },
  };
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}
