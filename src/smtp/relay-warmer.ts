// Opens TCP connections to the relay ahead of a fan-out and hands them to nodemailer's pool through its getSocket hook.
//
// Why: a new relay connection costs the relay's greeting before the first copy can go, and relays delay it on
// purpose (smtp-server 100 ms, Postfix's postscreen seconds). Opened while the pipeline works on a registered
// poster's post, that wait passes in parallel instead of after the commit. A connection nobody took is closed
// after maxAgeMs: the relay only ever sees a connect and a close, never a half-spoken SMTP session.
import { connect, type Socket } from 'node:net';

type SocketCallback = (error: Error | null, socketOptions?: { connection: Socket } | false) => void;

export interface RelayWarmer {
  /** Opens connections until `count` are open or opening. */
  warm(count: number): void;
  /** nodemailer's getSocket: a connected warm socket if one is there, else false (nodemailer connects itself). */
  getSocket(options: unknown, callback: SocketCallback): void;
  /** Connections open or opening and not handed out. */
  readonly size: number;
  close(): void;
}

interface Warm {
  socket: Socket;
  openedAt: number;
}

export function createRelayWarmer(relay: { host: string; port: number }, options: { maxAgeMs?: number; now?: () => number } = {}): RelayWarmer {
  const maxAgeMs = options.maxAgeMs ?? 15_000;
  const now = options.now ?? Date.now;
  let warm: Warm[] = [];
  let closed = false;

  const drop = (entry: Warm) => {
    warm = warm.filter((other) => other !== entry);
    entry.socket.destroy();
  };

  return {
    get size() {
      return warm.length;
    },
    warm(count) {
      if (closed) return;
      for (const entry of warm) if (now() - entry.openedAt >= maxAgeMs || entry.socket.destroyed) drop(entry);
      while (warm.length < count) {
        const socket = connect({ host: relay.host, port: relay.port });
        const entry: Warm = { socket, openedAt: now() };
        // The relay refusing or closing it is no error of ours: the copies connect as usual.
        socket.once('error', () => drop(entry));
        socket.once('close', () => drop(entry));
        // Unused, it is closed before the relay's own idle timeout ends the session for us.
        socket.setTimeout(maxAgeMs, () => drop(entry));
        // Waiting connections must not keep a stopping daemon alive.
        socket.unref();
        warm.push(entry);
      }
    },
    getSocket(_options, callback) {
      for (const entry of [...warm]) {
        const fresh = now() - entry.openedAt < maxAgeMs;
        if (!fresh || entry.socket.destroyed) {
          drop(entry);
          continue;
        }
        // Still connecting: nodemailer expects an open connection, so this one stays for the next copy.
        if (entry.socket.readyState !== 'open') continue;
        warm = warm.filter((other) => other !== entry);
        entry.socket.removeAllListeners('error');
        entry.socket.removeAllListeners('close');
        entry.socket.setTimeout(0);
        entry.socket.removeAllListeners('timeout');
        entry.socket.ref();
        // The greeting that arrived meanwhile waits in the socket's buffer: nodemailer reads it first.
        setImmediate(() => callback(null, { connection: entry.socket }));
        return;
      }
      setImmediate(() => callback(null, false));
    },
    close() {
      closed = true;
      for (const entry of warm) entry.socket.destroy();
      warm = [];
    },
  };
}
