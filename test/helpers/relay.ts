// A fake relay PEER on 127.0.0.1 (smtp-server): records every message with its envelope, and injects replies, drops or stalls per command.
import { SMTPServer } from 'smtp-server';
import type { SMTPServerSession } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { serverSchema, type ServerSettings } from '../../src/config/schema.ts';
import type { Config } from '../../src/config/types.ts';

export type RelayCommand = 'CONNECT' | 'MAIL' | 'RCPT' | 'DATA';

export interface RelayEnvelope {
  /** MAIL FROM address ('' for the null sender, or before MAIL). */
  from: string;
  /** RCPT TO addresses accepted so far in this transaction (for a RCPT fault: including the one being checked). */
  to: string[];
}

export interface RelayFault {
  at: RelayCommand;
  /**
   * reply: answer with `code` and `message` (a 421 also closes the connection, as smtp-server does);
   * drop: destroy the connection without a reply; stall: never answer (the client must time out).
   * At DATA, the fault applies to the reply after the message body (where size and content are judged).
   */
  action: 'reply' | 'drop' | 'stall';
  code?: number;
  message?: string;
  /** How many times the fault fires before it is used up (default 1; Infinity for always). */
  times?: number;
  /** Only for transactions this matches (default: all). */
  match?: (envelope: RelayEnvelope) => boolean;
}

export interface RelayMessage {
  from: string;
  to: string[];
  raw: Buffer;
  receivedAt: number;
  sessionId: string;
}

export interface RelayPeer {
  host: string;
  port: number;
  /** Every message accepted with 250, in order. */
  messages: RelayMessage[];
  /** Every fault that fired, in order, with the envelope it fired on. */
  fired: Array<{ fault: RelayFault; envelope: RelayEnvelope }>;
  /** Number of SMTP connections accepted so far. */
  connections(): number;
  inject(fault: RelayFault): void;
  clearFaults(): void;
  /** Accepted messages whose envelope names this recipient. */
  deliveredTo(recipient: string): RelayMessage[];
  /** Resolves when `count` messages have been accepted; rejects after `timeoutMs`. */
  waitForMessages(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface RelayPeerOptions {
  /** Advertised SIZE limit; bigger messages get 552 after DATA. */
  size?: number;
  /** Require AUTH PLAIN/LOGIN with these credentials. */
  auth?: { user: string; pass: string };
  /** Server-side idle timeout (ms); the default is long so clients' own timeouts are what a stall tests. */
  socketTimeoutMs?: number;
  /** Record envelopes only, with an empty `raw` (long fuzz runs would otherwise hold every notice in memory). */
  discardBodies?: boolean;
}

interface ActiveFault {
  fault: RelayFault;
  remaining: number;
}

interface SmtpReplyError extends Error {
  responseCode: number;
}

function replyError(code: number, message: string): SmtpReplyError {
  const error = new Error(message) as SmtpReplyError;
  error.responseCode = code;
  return error;
}

const defaultMessages: Record<number, string> = {
  421: '4.3.2 Service shutting down, closing transmission channel',
  450: '4.2.1 Mailbox busy, try again later',
  451: '4.3.0 Local error in processing',
  452: '4.3.1 Insufficient system storage',
  550: '5.1.1 Mailbox unavailable',
  552: '5.3.4 Message exceeds storage allocation',
  554: '5.7.1 Transaction failed',
};

export async function startRelayPeer(options: RelayPeerOptions = {}): Promise<RelayPeer> {
  const messages: RelayMessage[] = [];
  const fired: RelayPeer['fired'] = [];
  let faults: ActiveFault[] = [];
  let connectionCount = 0;
  let waiters: Array<() => void> = [];
  // Callbacks held by stalls, answered never; kept so close() can tear the sockets down.
  const stalledSessions = new Set<string>();

  function envelopeOf(session: SMTPServerSession, extraRecipient?: string): RelayEnvelope {
    const mailFrom = session.envelope.mailFrom;
    const to = session.envelope.rcptTo.map((rcpt) => rcpt.address);
    if (extraRecipient !== undefined) to.push(extraRecipient);
    return { from: mailFrom ? mailFrom.address : '', to };
  }

  function takeFault(at: RelayCommand, envelope: RelayEnvelope): RelayFault | null {
    for (const active of faults) {
      if (active.fault.at !== at || active.remaining <= 0) continue;
      if (active.fault.match && !active.fault.match(envelope)) continue;
      active.remaining -= 1;
      fired.push({ fault: active.fault, envelope });
      return active.fault;
    }
    return null;
  }

  function dropSession(sessionId: string): void {
    for (const connection of server.connections) {
      if (connection.session?.id === sessionId || connection.id === sessionId) connection._socket.destroy();
    }
  }

  /** Applies a fault: answers the callback with an error, drops the connection, or holds the callback forever. */
  function apply(fault: RelayFault, session: SMTPServerSession, callback: (error?: Error | null) => void): void {
    if (fault.action === 'drop') {
      dropSession(session.id);
      return;
    }
    if (fault.action === 'stall') {
      stalledSessions.add(session.id);
      return;
    }
    const code = fault.code ?? 451;
    callback(replyError(code, fault.message ?? defaultMessages[code] ?? 'Injected failure'));
  }

  const server = new SMTPServer({
    secure: false,
    authOptional: !options.auth,
    // A loopback peer without TLS: AUTH has to be allowed in the clear to test it at all.
    ...(options.auth ? { allowInsecureAuth: true, authMethods: ['PLAIN', 'LOGIN'] } : { disabledCommands: ['AUTH'] }),
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    size: options.size,
    socketTimeout: options.socketTimeoutMs ?? 120_000,
    closeTimeout: 1_000,
    onAuth(auth, _session, callback) {
      if (options.auth && auth.username === options.auth.user && auth.password === options.auth.pass) {
        callback(null, { user: auth.username });
      } else {
        callback(replyError(535, '5.7.8 Authentication credentials invalid'));
      }
    },
    onConnect(session, callback) {
      connectionCount += 1;
      const fault = takeFault('CONNECT', { from: '', to: [] });
      if (fault) return apply(fault, session, callback);
      callback();
    },
    onMailFrom(address, session, callback) {
      const fault = takeFault('MAIL', { from: address.address, to: [] });
      if (fault) return apply(fault, session, callback);
      callback();
    },
    onRcptTo(address, session, callback) {
      const fault = takeFault('RCPT', envelopeOf(session, address.address));
      if (fault) return apply(fault, session, callback);
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        if (!options.discardBodies) chunks.push(chunk);
      });
      stream.on('end', () => {
        if (stream.sizeExceeded) {
          callback(replyError(552, '5.3.4 Message exceeds fixed maximum message size'));
          return;
        }
        const envelope = envelopeOf(session);
        const fault = takeFault('DATA', envelope);
        if (fault) return apply(fault, session, callback);
        messages.push({ from: envelope.from, to: envelope.to, raw: options.discardBodies ? Buffer.alloc(0) : Buffer.concat(chunks), receivedAt: Date.now(), sessionId: session.id });
        const pending = waiters;
        waiters = [];
        for (const wake of pending) wake();
        callback(null, `2.0.0 Ok: queued as relay-${messages.length}`);
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  // A dropped or stalled session must not bring the peer down.
  server.on('error', () => undefined);
  const port = (server.server.address() as AddressInfo).port;

  return {
    host: '127.0.0.1',
    port,
    messages,
    fired,
    connections: () => connectionCount,
    inject(fault) {
      faults.push({ fault, remaining: fault.times ?? 1 });
    },
    clearFaults() {
      faults = [];
    },
    deliveredTo(recipient) {
      const wanted = recipient.toLowerCase();
      return messages.filter((message) => message.to.some((to) => to.toLowerCase() === wanted));
    },
    waitForMessages(count, timeoutMs = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`relay peer: ${messages.length} of ${count} messages after ${timeoutMs} ms`)), timeoutMs);
        const check = () => {
          if (messages.length >= count) {
            clearTimeout(deadline);
            resolve();
          } else {
            waiters.push(check);
          }
        };
        check();
      });
    },
    close() {
      for (const connection of server.connections) connection._socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A resolved Config for delivery tests: domain lists.example.org, relay pointing at `relay`, no lists.
 * `relay` overrides the relay settings (concurrency, retrySchedule in seconds, maxAgeHours).
 */
export function relayTestConfig(
  relay: { host: string; port: number },
  options: { dataPath: string; relay?: Partial<ServerSettings['relay']> },
): Config {
  const settings = serverSchema.parse({
    domain: 'lists.example.org',
    admins: ['postmaster@lists.example.org'],
    relay: { host: relay.host, port: relay.port, concurrency: 4, retrySchedule: [1], ...options.relay },
  });
  return {
    server: { ...settings, configDir: options.dataPath, file: `${options.dataPath}/server.yaml`, dataPath: options.dataPath },
    lists: new Map(),
  };
}
