// A tiny SMTP client for tests: speaks the protocol line by line so tests see every reply code (550, 552, 452...).
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';

export interface SmtpReply {
  code: number;
  /** The reply text without codes, lines joined with '\n'. */
  text: string;
  lines: string[];
}

/** A reply the client makes up when the server closed the connection instead of answering. */
const closedReply: SmtpReply = { code: 0, text: 'connection closed', lines: [] };

export class SmtpClient {
  private buffer = '';
  private replyWaiters: Array<(reply: SmtpReply) => void> = [];
  private replies: SmtpReply[] = [];
  private pendingLines: string[] = [];
  closed = false;
  greeting: SmtpReply = closedReply;

  private constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  /** Connects and reads the greeting (a 421 greeting is a refusal; the server closes right after). */
  static async connect(port: number, host = '127.0.0.1', options: { timeoutMs?: number; localAddress?: string } = {}): Promise<SmtpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      // localAddress: another loopback source (127.0.0.2) counts as another client for per-address limits.
      const raw = netConnect({ port, host, ...(options.localAddress ? { localAddress: options.localAddress } : {}) }, () => {
        raw.removeListener('error', reject);
        resolve(raw);
      });
      raw.once('error', reject);
    });
    socket.setTimeout(options.timeoutMs ?? 30_000, () => socket.destroy(new Error('smtp test client timeout')));
    const client = new SmtpClient(socket);
    client.greeting = await client.nextReply();
    return client;
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk.toString('latin1')));
    socket.on('close', () => this.onClose());
    socket.on('error', () => this.onClose());
  }

  private onData(text: string): void {
    this.buffer += text;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      this.pendingLines.push(line);
      // The last line of a reply has a space (or nothing) after the code; others have a hyphen.
      if (/^\d{3}(?: |$)/.test(line)) {
        const lines = this.pendingLines;
        this.pendingLines = [];
        this.deliver({ code: Number(line.slice(0, 3)), text: lines.map((entry) => entry.slice(4)).join('\n'), lines });
      }
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.replyWaiters.splice(0)) waiter(closedReply);
  }

  private deliver(reply: SmtpReply): void {
    const waiter = this.replyWaiters.shift();
    if (waiter) waiter(reply);
    else this.replies.push(reply);
  }

  /** The next reply from the server (code 0 when the connection closed first). */
  nextReply(): Promise<SmtpReply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed) return Promise.resolve(closedReply);
    return new Promise((resolve) => this.replyWaiters.push(resolve));
  }

  /** Sees raw server bytes before the reply parser does (crash tests act in the very tick a reply arrives). */
  onRawData(listener: (text: string) => void): void {
    this.socket.prependListener('data', (chunk: Buffer) => listener(chunk.toString('latin1')));
  }

  write(text: string | Buffer): void {
    if (!this.closed) this.socket.write(text);
  }

  /** Sends one command line (CRLF added) and returns its reply. */
  command(line: string): Promise<SmtpReply> {
    this.write(line + '\r\n');
    return this.nextReply();
  }

  ehlo(name = 'client.test.invalid'): Promise<SmtpReply> {
    return this.command(`EHLO ${name}`);
  }

  /** STARTTLS, then the TLS handshake; `ca` is the certificate to trust (tests use a self-signed one). */
  async startTls(options: { ca?: string | Buffer; servername?: string; rejectUnauthorized?: boolean } = {}): Promise<SmtpReply> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) return reply;
    const plain = this.socket as Socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const socket = tlsConnect(
        {
          socket: plain,
          ca: options.ca,
          servername: options.servername,
          rejectUnauthorized: options.rejectUnauthorized ?? Boolean(options.ca),
        },
        () => resolve(socket),
      );
      socket.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
    return reply;
  }

  get tlsSocket(): TLSSocket | null {
    return 'getPeerCertificate' in this.socket ? (this.socket as TLSSocket) : null;
  }

  /** DATA, the message (CRLF line ends, dot-stuffed), the final dot; returns the reply after the dot (or DATA's refusal). */
  async data(raw: string | Buffer): Promise<SmtpReply> {
    const start = await this.command('DATA');
    if (start.code !== 354) return start;
    this.write(dotStuff(raw));
    return this.nextReply();
  }

  async quit(): Promise<void> {
    if (!this.closed) await this.command('QUIT');
    this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** CRLF line ends, a leading dot doubled, and the terminating CRLF.CRLF. */
export function dotStuff(raw: string | Buffer): Buffer {
  const text = (typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw).toString('latin1');
  // Only a dot after CRLF (or at the start) is stuffed: /^/m would also match after a bare CR, which servers leave alone.
  let body = text.replace(/\r?\n/g, '\r\n').replace(/(^|\r\n)\./g, '$1..');
  if (!body.endsWith('\r\n')) body += '\r\n';
  return Buffer.from(body + '.\r\n', 'latin1');
}

export type SmtpStage = 'connect' | 'ehlo' | 'starttls' | 'mail' | 'rcpt' | 'data';

export interface SendResult {
  /** True when the message was accepted (250 after the final dot). */
  ok: boolean;
  /** The last reply: the refusal, or the 250 after DATA. */
  code: number;
  text: string;
  /** Where the transaction stopped (or 'data' when it went through). */
  stage: SmtpStage;
  /** The spool id from `250 2.0.0 queued as ID`. */
  spoolId?: string;
  replies: SmtpReply[];
}

export interface SendOptions {
  port: number;
  host?: string;
  from: string;
  to: string[];
  raw: string | Buffer;
  /** Extra MAIL FROM parameters, e.g. 'SIZE=100000'. */
  mailParameters?: string;
  /** Reuse an open connection (not closed afterwards); otherwise a new one is opened and closed. */
  client?: SmtpClient;
  /** Connect from this loopback address (e.g. 127.0.0.2): another client for per-address limits. */
  localAddress?: string;
  startTls?: { ca?: string | Buffer; servername?: string };
}

/** Sends one message and reports the first refusal or the final acceptance, like a real client would see it. */
export async function sendMail(options: SendOptions): Promise<SendResult> {
  const replies: SmtpReply[] = [];
  const result = (stage: SmtpStage, reply: SmtpReply, ok = false): SendResult => {
    const spoolId = /queued as (\S+)/.exec(reply.text)?.[1];
    return { ok, code: reply.code, text: reply.text, stage, replies, ...(spoolId ? { spoolId } : {}) };
  };
  const client = options.client ?? (await SmtpClient.connect(options.port, options.host, { localAddress: options.localAddress }));
  try {
    if (!options.client) {
      replies.push(client.greeting);
      if (client.greeting.code !== 220) return result('connect', client.greeting);
      const ehlo = await client.ehlo();
      replies.push(ehlo);
      if (ehlo.code !== 250) return result('ehlo', ehlo);
      if (options.startTls) {
        const tls = await client.startTls(options.startTls);
        replies.push(tls);
        if (tls.code !== 220) return result('starttls', tls);
        const again = await client.ehlo();
        replies.push(again);
        if (again.code !== 250) return result('ehlo', again);
      }
    }
    const mail = await client.command(`MAIL FROM:<${options.from}>${options.mailParameters ? ` ${options.mailParameters}` : ''}`);
    replies.push(mail);
    if (mail.code !== 250) return result('mail', mail);
    let accepted = 0;
    let lastRefusal: SmtpReply | null = null;
    for (const recipient of options.to) {
      const rcpt = await client.command(`RCPT TO:<${recipient}>`);
      replies.push(rcpt);
      if (rcpt.code === 250) accepted++;
      else lastRefusal ??= rcpt;
    }
    if (lastRefusal) {
      // Like most tests want: any refused recipient ends the transaction, so the refusal is what we report.
      await client.command('RSET');
      return result('rcpt', lastRefusal);
    }
    if (accepted === 0) return result('rcpt', replies[replies.length - 1]);
    const done = await client.data(options.raw);
    replies.push(done);
    return result('data', done, done.code === 250);
  } finally {
    if (!options.client) await client.quit().catch(() => undefined);
  }
}

/** A plain RFC 5322 message ending in CRLF; `size` pads the body to about that many bytes. */
export function makeMessage(options: { from?: string; to?: string; subject?: string; body?: string; size?: number; messageId?: string } = {}): string {
  const headers = [
    `From: ${options.from ?? 'sender@example.net'}`,
    `To: ${options.to ?? 'list@example.org'}`,
    `Subject: ${options.subject ?? 'test message'}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: ${options.messageId ?? `<${Date.now()}.${Math.random().toString(36).slice(2)}@test.invalid>`}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
  ].join('\r\n');
  let body = options.body ?? 'Hello from the test suite.\r\n';
  if (options.size && options.size > headers.length + body.length) {
    const line = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef\r\n';
    const missing = options.size - headers.length - 4 - body.length;
    body += line.repeat(Math.ceil(missing / line.length)).slice(0, missing);
  }
  if (!body.endsWith('\r\n')) body += '\r\n';
  return `${headers}\r\n\r\n${body}`;
}
