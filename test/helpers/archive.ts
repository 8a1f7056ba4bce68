// Archive test fixture: a real temp config (announce → public publishing), real list keys, a real SQLite file, mail builders.
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type Mail from 'nodemailer/lib/mailer/index.js';
import pino from 'pino';
import { loadConfig } from '../../src/config/loader.ts';
import type { Config, ListConfig } from '../../src/config/types.ts';
import type { ListKey } from '../../src/crypto/index.ts';
import { databaseFile, loadListKey } from '../../src/data-dir.ts';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { migrations } from '../../src/schema.ts';
import type { Logger } from '../../src/util/log.ts';
import { insertArchiveEntry, prepareArchiveEntry } from '../../src/archive/store.ts';
import { makeTestConfig, type TestConfig } from './daemon.ts';

export const announceList = 'xen-security-issues';
export const publicList = 'xen-announce';
export const privateList = 'xen-security-issues-discuss';
export const applicationsList = 'predisclosure-applications';

export interface ArchiveFixture {
  testConfig: TestConfig;
  config: Config;
  db: Db;
  dbFile: string;
  logger: Logger;
  list(name: string): ListConfig;
  listKey(name: string): ListKey;
  /** The synchronous lookup the web server and releases take. */
  listKeys: (name: string) => ListKey | undefined;
  /** Prepares and inserts one message; returns the row id. */
  archive(listName: string, message: Buffer, options?: { receivedAt?: Date; embargoUntil?: Date | null }): Promise<number>;
  /** Closes the handle and opens a new one on the same file, as a restart would. */
  reopen(): Db;
  cleanup(): void;
}

/** Announce list publishing to a public xen-announce list, plus the shipped private and public lists. */
export async function makeArchiveFixture(options: { mailOnRelease?: boolean } = {}): Promise<ArchiveFixture> {
  const testConfig = makeTestConfig({
    lists: {
      [announceList]: {
        description: 'Embargoed advisories (test)',
        kind: 'announce',
        archive: 'private',
        publishTo: publicList,
        mailOnRelease: options.mailOnRelease ?? false,
        embargoPattern: 'Embargo-Until:\\s*(\\S+)',
        members: [{ email: 'security@xenproject.example', key: '../keys/xenproject-security.asc', roles: ['poster', 'recipient'] }],
      },
      [publicList]: { description: 'Published advisories (test)', kind: 'public', archive: 'public', members: [] },
    },
  });
  const loaded = await loadConfig(testConfig.configDir);
  if (!loaded.ok) throw new Error(`test config invalid: ${JSON.stringify(loaded.errors)}`);
  const config = loaded.config;
  const keys = new Map<string, ListKey>();
  for (const name of config.lists.keys()) keys.set(name, await loadListKey(config, name));
  const dbFile = databaseFile(config);
  let db = openDatabase(dbFile, migrations);
  const logger = pino({ level: 'silent' });
  const list = (name: string) => {
    const found = config.lists.get(name);
    if (!found) throw new Error(`no list ${name}`);
    return found;
  };
  const listKey = (name: string) => {
    const found = keys.get(name);
    if (!found) throw new Error(`no key for ${name}`);
    return found;
  };
  const fixture: ArchiveFixture = {
    testConfig,
    config,
    get db() {
      return db;
    },
    dbFile,
    logger,
    list,
    listKey,
    listKeys: (name) => keys.get(name),
    async archive(listName, message, archiveOptions = {}) {
      const entry = await prepareArchiveEntry({
        list: list(listName),
        listKey: listKey(listName),
        message,
        receivedAt: archiveOptions.receivedAt ?? new Date(),
        spoolId: null,
        ...(archiveOptions.embargoUntil !== undefined ? { embargoUntil: archiveOptions.embargoUntil } : {}),
      });
      return insertArchiveEntry(db, entry);
    },
    reopen() {
      db.close();
      db = openDatabase(dbFile, migrations);
      return db;
    },
    cleanup() {
      if (db.open) db.close();
      testConfig.cleanup();
    },
  };
  return fixture;
}

export interface TestMail {
  from?: string;
  to?: string;
  subject: string;
  messageId: string;
  inReplyTo?: string;
  references?: string[];
  date?: Date;
  text?: string;
  html?: string;
  headers?: Record<string, string>;
  attachments?: Mail.Attachment[];
}

/** A real MIME message (nodemailer's composer), as a list would distribute it. */
export async function buildMail(mail: TestMail): Promise<Buffer> {
  const composer = new MailComposer({
    from: mail.from ?? 'Alice Applicant <alice@applicant.example>',
    to: mail.to ?? 'list@lists.example.org',
    subject: mail.subject,
    messageId: `<${mail.messageId}>`,
    inReplyTo: mail.inReplyTo ? `<${mail.inReplyTo}>` : undefined,
    references: mail.references?.map((id) => `<${id}>`),
    date: mail.date ?? new Date('2026-03-14T10:00:00Z'),
    text: mail.text,
    html: mail.html,
    headers: mail.headers,
    attachments: mail.attachments,
  });
  return composer.compile().build();
}

/** Runs `embargo ARGS…` in this process (so the test shares its list keys) and returns the exit code it set. */
export async function runCli(args: string[]): Promise<number> {
  const { main } = await import('../../src/cli/main.ts');
  process.exitCode = 0;
  await main(['node', 'embargo', ...args]);
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return code;
}

/** runCli with what the command printed: stdout and stderr are captured for the call's duration. */
export async function runCliCaptured(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const writeOut = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await runCli(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
  }
}
