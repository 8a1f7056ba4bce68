// The config contract: zod schemas for config/server.yaml and config/lists/NAME.yaml (unknown keys are errors).
import { z } from 'zod';
import cron from 'node-cron';

const hostPort = (defaultPort: number) =>
  z.strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(defaultPort),
  });

// A schedule that node-cron would refuse at start is refused here, with the file and line, instead.
const cronExpression = z.string().refine((expression) => cron.validate(expression), {
  message: 'must be a cron expression node-cron accepts (5 or 6 fields, e.g. "0 9 * * 1"), and a day that exists',
});

/** A DKIM selector is one DNS label. */
export const dkimSelectorPattern = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

const email = z.string().regex(/^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$/, 'must be an email address like name@example.org');

export const serverSchema = z.strictObject({
  domain: z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'must be a domain name like lists.example.org'),
  dataDir: z.string().min(1).default('../data'),
  smtp: hostPort(2525)
    .extend({
      maxMessageBytes: z.number().int().positive().default(26_214_400),
      maxRecipients: z.number().int().positive().default(50),
      tls: z.strictObject({ key: z.string(), cert: z.string() }).optional(),
      /** Per remote address: connections per minute and messages per minute; backlog caps (per address and in all). */
      rateLimit: z
        .strictObject({
          connectionsPerMinute: z.number().int().positive().default(600),
          messagesPerMinute: z.number().int().positive().default(6000),
          maxConcurrentConnections: z.number().int().positive().default(100),
          maxBacklogPerAddress: z.number().int().positive().default(50),
          maxBacklog: z.number().int().positive().default(5000),
        })
        .default({ connectionsPerMinute: 600, messagesPerMinute: 6000, maxConcurrentConnections: 100, maxBacklogPerAddress: 50, maxBacklog: 5000 }),
      socketTimeoutSeconds: z.number().int().positive().default(60),
      /** Overall time for one DATA phase: a client trickling bytes is cut with 451 after it. */
      dataTimeoutSeconds: z.number().int().positive().default(600),
      /** Free space (MiB) kept on the data directory's file system: below it, mail gets 452 before the disk is full. */
      freeSpaceReserveMiB: z.number().int().nonnegative().default(256),
    })
    .default({
      host: '127.0.0.1',
      port: 2525,
      maxMessageBytes: 26_214_400,
      maxRecipients: 50,
      rateLimit: { connectionsPerMinute: 600, messagesPerMinute: 6000, maxConcurrentConnections: 100, maxBacklogPerAddress: 50, maxBacklog: 5000 },
      socketTimeoutSeconds: 60,
      dataTimeoutSeconds: 600,
      freeSpaceReserveMiB: 256,
    }),
  relay: hostPort(25)
    .extend({
      secure: z.boolean().default(false),
      /** The relay's password: inline `pass`, or read from `passFile` (relative to server.yaml) or the variable `passEnv`. */
      auth: z
        .strictObject({ user: z.string(), pass: z.string().optional(), passFile: z.string().optional(), passEnv: z.string().min(1).optional() })
        .refine((auth) => [auth.pass, auth.passFile, auth.passEnv].filter((value) => value !== undefined).length === 1, {
          message: 'give exactly one of pass, passFile or passEnv',
        })
        .optional(),
      concurrency: z.number().int().positive().default(8),
      /** Delays between delivery attempts, in seconds; the last one repeats. */
      retrySchedule: z.array(z.number().int().positive()).min(1).default([60, 300, 900, 3600, 14400]),
      maxAgeHours: z.number().positive().default(120),
    })
    .default({ host: '127.0.0.1', port: 25, secure: false, concurrency: 8, retrySchedule: [60, 300, 900, 3600, 14400], maxAgeHours: 120 }),
  http: hostPort(8025)
    .extend({
      enabled: z.boolean().default(true),
      publicUrl: z.string().url().optional(),
      /** false: the archive's index page names only public lists (every list's key stays at /keys/ and WKD). */
      showPrivateLists: z.boolean().default(true),
      /** true behind a reverse proxy: the client IP (for the subscribe form's rate limit) is X-Forwarded-For's last entry. */
      trustProxy: z.boolean().default(false),
    })
    .default({ host: '127.0.0.1', port: 8025, enabled: true, showPrivateLists: true, trustProxy: false }),
  /** Prometheus /metrics on a listener of its own, never the public web one. */
  metrics: hostPort(9425)
    .extend({ enabled: z.boolean().default(true), listLabels: z.boolean().default(false) })
    .default({ host: '127.0.0.1', port: 9425, enabled: true, listLabels: false }),
  /** What a valid signature is good for: how old it may be when the post is processed. */
  signatures: z
    .strictObject({ maxAgeHours: z.number().positive().default(72) })
    .default({ maxAgeHours: 72 }),
  /** Automatic mail a list sends (src/lists/reply-budget.ts): a flood must not become a flood of signed replies. */
  notices: z
    .strictObject({
      /** Automatic replies (refusals, -request and -sendkey answers, confirmations) to one address, per list and day. */
      autoRepliesPerAddressPerDay: z.number().int().positive().default(10),
      /** Notices to a list's admins about refused posts, per hour. */
      refusalNoticesPerListPerHour: z.number().int().positive().default(30),
    })
    .default({ autoRepliesPerAddressPerDay: 10, refusalNoticesPerListPerHour: 30 }),
  admins: z.array(email).min(1),
  /** DKIM-sign every outgoing copy with the key in DATADIR/dkim/SELECTOR.key (`embargo dkim generate`). */
  dkim: z
    .strictObject({ selector: z.string().regex(dkimSelectorPattern, 'must be a DNS label (letters, digits, hyphens), e.g. embargo2026') })
    .optional(),
  keys: z
    .strictObject({
      algorithm: z.enum(['curve25519', 'rsa4096']).default('curve25519'),
      /** Name of an environment variable holding the list keys' passphrase. */
      passphraseEnv: z.string().optional(),
      /** A file (relative to server.yaml) holding the list keys' passphrase. */
      passphraseFile: z.string().optional(),
    })
    .default({ algorithm: 'curve25519' }),
  log: z
    .strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
    .default({ level: 'info' }),
  schedules: z
    .strictObject({
      retrySweep: cronExpression.default('*/30 * * * * *'),
      embargoRelease: cronExpression.default('* * * * *'),
      keyExpiryWarning: cronExpression.default('0 9 * * 1'),
      keyExpiryWarningDays: z.number().int().positive().default(14),
      heldDigest: cronExpression.default('0 8 * * *'),
      cleanup: cronExpression.default('30 3 * * *'),
      spoolRetentionDays: z.number().int().positive().default(30),
      deadLetterRetentionDays: z.number().int().positive().default(90),
    })
    .default({
      retrySweep: '*/30 * * * * *',
      embargoRelease: '* * * * *',
      keyExpiryWarning: '0 9 * * 1',
      keyExpiryWarningDays: 14,
      heldDigest: '0 8 * * *',
      cleanup: '30 3 * * *',
      spoolRetentionDays: 30,
      deadLetterRetentionDays: 90,
    }),
});

export const roleSchema = z.enum(['recipient', 'poster', 'moderator', 'admin']);

export const memberSchema = z
  .strictObject({
    email,
    organisation: z.string().optional(),
    key: z.string().optional(),
    fingerprint: z
      .string()
      .regex(/^[0-9A-Fa-f]{40}$/, 'must be a 40-hex-digit OpenPGP v4 fingerprint')
      .optional(),
    roles: z.array(roleSchema).min(1).default(['recipient']),
  })
  .refine((member) => !(member.key && member.fingerprint), { message: 'give either key or fingerprint, not both' });

export const listSchema = z.strictObject({
  description: z.string().default(''),
  /** Public lists: what the list page tells readers and applicants (Markdown, or plain text with infoFormat: text). */
  info: z.string().max(20_000).optional(),
  infoFormat: z.enum(['markdown', 'text']).default('markdown'),
  kind: z.enum(['announce', 'discussion', 'public']),
  archive: z.enum(['private', 'public', 'none']),
  moderated: z.boolean().default(false),
  /** Whether the poster receives their own post. */
  sendToPoster: z.boolean().default(true),
  replyTo: z.enum(['list', 'poster', 'none']).default('none'),
  maxMessageBytes: z.number().int().positive().optional(),
  /** Public lists: posts per sender per hour. */
  postsPerHourPerSender: z.number().int().positive().default(20),
  /** Announce lists: public list that receives advisories once their embargo lifts. */
  publishTo: z.string().optional(),
  /** Announce lists: also mail released advisories to the publishTo list's subscribers. */
  mailOnRelease: z.boolean().default(false),
  /** Announce lists: the discussion list that refusals point non-posters to. */
  discussionList: z.string().optional(),
  /** Announce lists: a regular expression whose first group is an RFC 3339 embargo end in the text. */
  embargoPattern: z.string().optional(),
  /**
   * Announce lists: a regular expression matching an advisory id (e.g. XSA-[0-9]+) in the signed Subject or text.
   * Posts with the same id are revisions of one advisory; only posts with an id are ever published.
   */
  advisoryPattern: z.string().optional(),
  members: z.array(memberSchema).default([]),
  /** Lists whose members are members of this list too (same address, organisation and key). */
  membersFrom: z.array(z.string().min(1)).min(1).optional(),
  /** The roles inherited members get; default [recipient, poster] on a discussion list, [recipient] otherwise. */
  membersFromRoles: z.array(roleSchema).min(1).optional(),
});

export type ServerConfigInput = z.input<typeof serverSchema>;
export type ServerSettings = z.output<typeof serverSchema>;
export type ListSettings = z.output<typeof listSchema>;
export type MemberSettings = z.output<typeof memberSchema>;
export type Role = z.output<typeof roleSchema>;
