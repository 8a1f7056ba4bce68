// `embargo sink`: a development-only SMTP relay on loopback that accepts every message and writes it to a directory as a .eml file.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { loopbackPeerOptions } from '../../smtp/loopback-peer.ts';
import { exitCodes } from '../exit-codes.ts';

export const defaultSinkDir = join(tmpdir(), 'embargo-sink');

export interface SinkedMessage {
  file: string;
  receivedAt: string;
  from: string;
  to: string[];
  size: number;
  /** The outer Subject (encrypted lists show a generic one; the real one is inside the ciphertext). */
  subject: string;
  encrypted: boolean;
}

export interface Sink {
  host: string;
  port: number;
  dir: string;
  close(): Promise<void>;
}

function outerHeader(raw: Buffer, name: string): string {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end < 0 ? Math.min(raw.length, 64 * 1024) : end).toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  const line = head.split(/\r?\n/).find((candidate) => candidate.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line ? line.slice(name.length + 1).trim() : '';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** Starts the sink; `onMessage` gets each stored message's summary. Refuses anything but a loopback address. */
export async function startSink(options: { host?: string; port: number; dir: string; onMessage?: (message: SinkedMessage) => void }): Promise<Sink> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new Error(`the sink is a development tool and listens on loopback only, not ${host}`);
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let counter = 0;
  const server = new SMTPServer({
    ...loopbackPeerOptions,
    banner: 'embargo development sink (stores every message; not for production)',
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (error?: Error | null, message?: string) => void) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        const receivedAt = new Date();
        counter += 1;
        const recipients = session.envelope.rcptTo.map((rcpt) => rcpt.address);
        // Named after the (first) recipient, so `gpg --decrypt DIR/*security@vendor-a.example.eml` finds a member's copy.
        const who = `${(recipients[0] ?? 'nobody').replace(/[^A-Za-z0-9@._+-]/g, '_')}${recipients.length > 1 ? `+${recipients.length - 1}` : ''}`;
        const file = join(dir, `${receivedAt.toISOString().replace(/[:.]/g, '-')}-${String(counter).padStart(4, '0')}-${who}.eml`);
        try {
          writeFileSync(file, raw, { mode: 0o600 });
          const message: SinkedMessage = {
            file,
            receivedAt: receivedAt.toISOString(),
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: recipients,
            size: raw.length,
            subject: outerHeader(raw, 'Subject'),
            encrypted: /multipart\/encrypted/i.test(outerHeader(raw, 'Content-Type')),
          };
          appendFileSync(join(dir, 'index.jsonl'), JSON.stringify(message) + '\n', { mode: 0o600 });
          options.onMessage?.(message);
          callback(null, `2.0.0 stored as ${file}`);
        } catch (error) {
          callback(Object.assign(new Error(`4.3.0 sink cannot store: ${(error as Error).message}`), { responseCode: 451 }));
        }
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolvePromise, rejectPromise) => {
    server.server.once('error', rejectPromise);
    server.listen(options.port, host, () => {
      server.server.off('error', rejectPromise);
      resolvePromise();
    });
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    host,
    port,
    dir,
    close: () => new Promise<void>((resolvePromise) => server.close(() => resolvePromise())),
  };
}

export function summaryLine(message: SinkedMessage): string {
  const time = message.receivedAt.slice(11, 19);
  return `${time}  ${message.from || '<>'} -> ${message.to.join(', ')}  ${message.size} bytes  ${message.encrypted ? 'encrypted' : 'clear'}  "${message.subject}"  ${message.file}`;
}

export function registerSink(program: Command): void {
  program
    .command('sink')
    .description('DEVELOPMENT ONLY: an SMTP relay on loopback that accepts every message and stores it as a .eml file (for the README walkthrough)')
    .option('-p, --port <port>', 'port to listen on (the shipped config relays to 2526)', '2526')
    .option('--host <address>', 'loopback address to listen on', '127.0.0.1')
    .option('-d, --dir <dir>', 'directory for the .eml files and index.jsonl', defaultSinkDir)
    .option('--json', 'print one JSON object per message instead of a summary line')
    .action(async (options: { port: string; host: string; dir: string; json?: boolean }) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        process.stderr.write(`embargo: --port ${options.port} is not a port number\n`);
        process.exitCode = exitCodes.usage;
        return;
      }
      let sink: Sink;
      try {
        sink = await startSink({
          host: options.host,
          port,
          dir: options.dir,
          onMessage: (message) => process.stdout.write((options.json ? JSON.stringify(message) : summaryLine(message)) + '\n'),
        });
      } catch (error) {
        process.stderr.write(`embargo: sink cannot start: ${(error as Error).message}\n`);
        process.exitCode = exitCodes.failure;
        return;
      }
      process.stderr.write(`embargo sink: listening on ${sink.host}:${sink.port}, storing messages in ${sink.dir} (development only; Ctrl-C stops)\n`);
      const stop = () => void sink.close().then(() => process.exit(exitCodes.ok));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
