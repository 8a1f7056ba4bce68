// Per-remote-address limits for SMTP intake: connections per minute, messages per minute, concurrent connections.

export interface RateLimits {
  connectionsPerMinute: number;
  messagesPerMinute: number;
  maxConcurrentConnections: number;
}

export type RateDecision = { ok: true } | { ok: false; code: 421 | 451; message: string };

const windowMs = 60_000;

/** Counts events in a sliding one-minute window, one timestamp queue per address. */
class SlidingWindow {
  private readonly events = new Map<string, number[]>();

  /** Records an event unless the address already reached the limit within the last minute. */
  take(address: string, limit: number, now: number): boolean {
    const times = this.prune(address, now);
    if (times.length >= limit) return false;
    times.push(now);
    this.events.set(address, times);
    return true;
  }

  private prune(address: string, now: number): number[] {
    const times = this.events.get(address) ?? [];
    let expired = 0;
    while (expired < times.length && times[expired] <= now - windowMs) expired++;
    if (expired > 0) times.splice(0, expired);
    return times;
  }

  /** Forgets idle addresses so the maps do not grow with every address ever seen. */
  sweep(now: number): void {
    for (const address of [...this.events.keys()]) {
      if (this.prune(address, now).length === 0) this.events.delete(address);
    }
  }
}

export interface RateLimiter {
  /** A new connection from address; on ok, the caller must call `disconnected` when it closes. */
  connect(address: string): RateDecision;
  disconnected(address: string): void;
  /** A MAIL FROM from address. */
  message(address: string): RateDecision;
  /** Open connections from one address (for tests and metrics). */
  openConnections(address: string): number;
}

/** `limits` is read on every call, so a config reload changes the limits of running servers. */
export function createRateLimiter(limits: () => RateLimits, now: () => number = Date.now): RateLimiter {
  const connections = new SlidingWindow();
  const messages = new SlidingWindow();
  const open = new Map<string, number>();
  let lastSweep = now();

  const maybeSweep = (time: number) => {
    if (time - lastSweep < windowMs) return;
    lastSweep = time;
    connections.sweep(time);
    messages.sweep(time);
  };

  return {
    connect(address) {
      const time = now();
      maybeSweep(time);
      const current = limits();
      if ((open.get(address) ?? 0) >= current.maxConcurrentConnections) {
        return { ok: false, code: 421, message: '4.7.0 too many concurrent connections from your address, try again later' };
      }
      if (!connections.take(address, current.connectionsPerMinute, time)) {
        return { ok: false, code: 421, message: '4.7.0 too many connections from your address, try again later' };
      }
      open.set(address, (open.get(address) ?? 0) + 1);
      return { ok: true };
    },
    disconnected(address) {
      const count = (open.get(address) ?? 0) - 1;
      if (count > 0) open.set(address, count);
      else open.delete(address);
    },
    message(address) {
      const time = now();
      maybeSweep(time);
      if (!messages.take(address, limits().messagesPerMinute, time)) {
        return { ok: false, code: 451, message: '4.7.0 too many messages from your address, try again later' };
      }
      return { ok: true };
    },
    openConnections(address) {
      return open.get(address) ?? 0;
    },
  };
}
