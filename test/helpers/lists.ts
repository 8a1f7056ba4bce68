// A list-engine test world: a real daemon with three lists, members with their own GnuPG homes, a recording relay peer.
import { stringify } from 'yaml';
import { ensureListKey } from '../../src/crypto/index.ts';
import type { SpoolState } from '../../src/queues/spool.ts';
import { createGpgHome } from './gpg.ts';
import type { GpgHome, GpgResult } from './gpg.ts';
import { deepMerge, startTestDaemon } from './daemon.ts';
import type { TestDaemon } from './daemon.ts';
import { startRelayPeer } from './relay.ts';
import type { RelayMessage, RelayPeer } from './relay.ts';
import { sendMail } from './smtp.ts';

export const domain = 'lists.example.org';
export const announce = 'advisories';
export const discussion = 'sharing';
export const publicList = 'applications';
export const serverAdmin = 'postmaster@lists.example.org';

export interface Person {
  address: string;
  name: string;
  gpg: GpgHome;
  fingerprint: string;
  armored: string;
}

export interface ListWorld {
  daemon: TestDaemon;
  relay: RelayPeer;
  /** Security team: poster on the announce list, admin of the lists. */
  security: Person;
  vendorA: Person;
  vendorB: Person;
  /** A member whose registered key has expired. */
  expired: Person;
  /** Not on any list. */
  outsider: Person;
  listKeys: Record<string, { fingerprint: string; armored: string }>;
  /** Sends raw mail over SMTP to the daemon; returns the spool id. */
  send(from: string, to: string[], raw: string | Buffer): Promise<string>;
  /** Waits until the spool row reached one of the states. */
  waitForState(id: string, states: SpoolState[], timeoutMs?: number): Promise<SpoolState>;
  /** Waits until the delivery queue has nothing left to send now, then returns what the relay got since `mark`. */
  settle(mark?: number): Promise<RelayMessage[]>;
  stop(): Promise<void>;
}

export interface ListWorldOptions {
  /** Extra fields for the discussion list (e.g. moderated: true). */
  discussion?: Record<string, unknown>;
  announce?: Record<string, unknown>;
  public?: Record<string, unknown>;
  /** More members of the announce list (YAML member entries), with their key files (path under config/ → contents). */
  extraAnnounceMembers?: Array<Record<string, unknown>>;
  /** More members of the discussion list (YAML member entries); their key files go in `files`. */
  extraDiscussionMembers?: Array<Record<string, unknown>>;
  files?: Record<string, string>;
  /** Deep-merged into server.yaml after the world's own settings (e.g. { admins: [...] }). */
  server?: Record<string, unknown>;
}

export async function person(address: string, name: string, options: { expire?: string; at?: Date } = {}): Promise<Person> {
  const gpg = await createGpgHome();
  const key = await gpg.generateKey({ address, name, ...options });
  return { address, name, gpg, fingerprint: key.fingerprint, armored: await gpg.exportPublic(key.fingerprint) };
}

export async function startListWorld(options: ListWorldOptions = {}): Promise<ListWorld> {
  const [security, vendorA, vendorB, expired, outsider] = await Promise.all([
    person('security@xen.example', 'Xen Security Team'),
    person('security@vendor-a.example', 'Vendor A PSIRT'),
    person('security@vendor-b.example', 'Vendor B PSIRT'),
    // Made 3 days ago, valid for 1 day: expired since yesterday.
    person('security@vendor-c.example', 'Vendor C PSIRT', { expire: '1d', at: new Date(Date.now() - 3 * 86_400_000) }),
    person('someone@outside.example', 'Outsider'),
  ]);
  const relay = await startRelayPeer();
  const member = (who: Person, roles: string[], keyFile: string) => ({ email: who.address, organisation: who.name, key: `../keys/${keyFile}`, roles });
  const lists = {
    [announce]: {
      description: 'Embargoed advisories (test)',
      kind: 'announce',
      archive: 'private',
      ...options.announce,
      members: [
        member(security, ['poster', 'recipient', 'admin'], 'security.asc'),
        member(vendorA, ['recipient'], 'vendor-a.asc'),
        member(vendorB, ['recipient'], 'vendor-b.asc'),
        member(expired, ['recipient'], 'vendor-c.asc'),
        ...(options.extraAnnounceMembers ?? []),
      ],
    },
    [discussion]: {
      description: 'Members sharing fixes (test)',
      kind: 'discussion',
      archive: 'private',
      ...options.discussion,
      members: [
        member(security, ['recipient', 'moderator', 'admin'], 'security.asc'),
        member(vendorA, ['recipient'], 'vendor-a.asc'),
        member(vendorB, ['recipient'], 'vendor-b.asc'),
        ...(options.extraDiscussionMembers ?? []),
      ],
    },
    [publicList]: {
      description: 'Applications (test)',
      kind: 'public',
      archive: 'public',
      postsPerHourPerSender: 3,
      ...options.public,
      members: [member(security, ['recipient', 'moderator'], 'security.asc')],
    },
  };
  const daemon = await startTestDaemon({
    relay: { host: relay.host, port: relay.port },
    removeLists: ['xen-security-issues', 'xen-security-issues-discuss', 'predisclosure-applications'],
    server: deepMerge({ admins: [serverAdmin], relay: { retrySchedule: [1] } }, options.server ?? {}),
    lists: Object.fromEntries(Object.entries(lists).map(([name, body]) => [name, stringify(body)])),
    files: {
      'keys/security.asc': security.armored,
      'keys/vendor-a.asc': vendorA.armored,
      'keys/vendor-b.asc': vendorB.armored,
      'keys/vendor-c.asc': expired.armored,
      ...options.files,
    },
  });
  const listKeys: ListWorld['listKeys'] = {};
  for (const name of [announce, discussion, publicList]) {
    const key = await ensureListKey({ dataDir: daemon.config.dataDir, listName: name, domain });
    listKeys[name] = { fingerprint: key.fingerprint, armored: key.armoredPublicKey };
  }
  // Members know the list keys (from NAME-sendkey@), so they can encrypt to them and check the list's signatures.
  for (const who of [security, vendorA, vendorB, expired, outsider]) {
    for (const key of Object.values(listKeys)) await who.gpg.importKey(key.armored);
  }
  const db = () => {
    const handle = daemon.daemon?.db;
    if (!handle) throw new Error('list tests need the in-process daemon');
    return handle;
  };

  const world: ListWorld = {
    daemon,
    relay,
    security,
    vendorA,
    vendorB,
    expired,
    outsider,
    listKeys,
    async send(from, to, raw) {
      const result = await sendMail({ port: daemon.smtpPort, from, to, raw });
      if (!result.ok || !result.spoolId) throw new Error(`SMTP refused the test message: ${result.code} ${result.text}`);
      return result.spoolId;
    },
    async waitForState(id, states, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const row = db().prepare('SELECT state, reason FROM spool WHERE id = ?').get(id) as { state: SpoolState; reason: string | null } | undefined;
        if (row && states.includes(row.state)) return row.state;
        if (Date.now() > deadline) throw new Error(`spool row ${id} is ${row?.state ?? 'missing'} (${row?.reason ?? ''}), not ${states.join('|')}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async settle(mark = 0) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const { pending } = db()
          .prepare(`SELECT COUNT(*) AS pending FROM outbound WHERE state IN ('queued', 'sending') OR (state = 'deferred' AND next_attempt_at <= ?)`)
          .get(Date.now() + 2_000) as { pending: number };
        const busy = db().prepare(`SELECT COUNT(*) AS busy FROM spool WHERE state IN ('queued', 'processing')`).get() as { busy: number };
        if (pending === 0 && busy.busy === 0) return relay.messages.slice(mark);
        if (Date.now() > deadline) throw new Error(`outbound queue did not settle: ${pending} rows pending`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async stop() {
      await daemon.stop();
      await relay.close();
      await Promise.all([security, vendorA, vendorB, expired, outsider].map((who) => who.gpg.cleanup()));
    },
  };
  return world;
}

let counter = 0;

export function newMessageId(): string {
  counter += 1;
  return `${Date.now().toString(36)}.${counter}.${Math.random().toString(36).slice(2)}@test.example`;
}

export interface PostOptions {
  from: Person | string;
  /** The From header's address when it differs from the signer (impersonation tests). */
  fromHeader?: string;
  to: string;
  subject: string;
  body: string;
  /** Sign with this person's key (default: the sender); null: unsigned. */
  signer?: Person | null;
  /** Encrypt to this list's key (default); null: not encrypted. */
  encryptTo?: string | null;
  messageId?: string;
  headers?: Record<string, string>;
  /** Header fields inside the signed (and encrypted) entity, as clients write protected headers (e.g. the real Subject). */
  innerHeaders?: Record<string, string>;
  /** The poster's MIME entity as written (headers and body), instead of a text/plain entity made from `body`. */
  entity?: string;
  /** Encrypt to this key (fingerprint) instead of the list's current key, e.g. a list key from before a rotation. */
  encryptToKey?: string;
}

/** A post as GnuPG + a PGP/MIME mail client would send it: MIME entity signed and encrypted in one OpenPGP message. */
/** When each signer last signed each text, in whole seconds (OpenPGP signature times have one-second resolution). */
const lastSigned = new Map<string, number>();

/**
 * Waits for the next second when this signer signed this same text in the current one: RSA and EdDSA signatures are
 * deterministic, so the two posts would carry the same signature, and replay protection rightly refuses the second.
 * Tests that build two posts with the same body mean two posts; replay tests reuse one post's bytes instead.
 */
async function awaitFreshSignatureSecond(fingerprint: string, text: string): Promise<() => void> {
  const key = `${fingerprint}\u0000${text}`;
  const second = () => Math.floor(Date.now() / 1000);
  while ((lastSigned.get(key) ?? -1) >= second()) await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
  // Called once gpg is done: its signature time is at the latest this second.
  return () => lastSigned.set(key, second());
}

export async function buildPost(world: ListWorld, options: PostOptions): Promise<{ raw: string; messageId: string }> {
  const sender = typeof options.from === 'string' ? null : options.from;
  const fromAddress = options.fromHeader ?? (typeof options.from === 'string' ? options.from : options.from.address);
  const signer = options.signer === undefined ? sender : options.signer;
  const messageId = options.messageId ?? newMessageId();
  const inner = Object.entries(options.innerHeaders ?? {}).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  const entity =
    options.entity ??
    `Content-Type: text/plain; charset=utf-8${inner ? '; protected-headers="v1"' : ''}\r\nContent-Transfer-Encoding: 8bit\r\n${inner}\r\n` +
      `${options.body.replace(/\r?\n/g, '\r\n')}\r\n`;
  const extra = Object.entries(options.headers ?? {}).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  const head =
    `From: ${sender && !options.fromHeader ? `${sender.name} <${fromAddress}>` : fromAddress}\r\n` +
    `To: ${options.to}\r\n` +
    `Subject: ${options.subject}\r\n` +
    `Date: ${new Date().toUTCString()}\r\n` +
    `Message-ID: <${messageId}>\r\n` +
    extra +
    'MIME-Version: 1.0\r\n';
  const encryptTo = options.encryptTo === undefined ? options.to.split('@')[0] : options.encryptTo;
  const gpg = (signer ?? sender)?.gpg ?? world.outsider.gpg;
  const signed = signer ? await awaitFreshSignatureSecond(signer.fingerprint, entity) : () => undefined;
  if (encryptTo) {
    const ciphertext = await gpg.encrypt(entity, {
      recipients: [options.encryptToKey ?? world.listKeys[encryptTo].fingerprint],
      ...(signer ? { signer: signer.fingerprint } : {}),
    });
    signed();
    const boundary = `enc-${Math.random().toString(36).slice(2)}`;
    return {
      messageId,
      raw:
        head +
        `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
        `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
        `--${boundary}\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n${ciphertext.toString('utf8').replace(/\r?\n/g, '\r\n')}\r\n` +
        `--${boundary}--\r\n`,
    };
  }
  if (signer) {
    const signature = await signer.gpg.detachSign(entity, signer.fingerprint, ['--digest-algo', 'SHA256']);
    signed();
    const boundary = `sig-${Math.random().toString(36).slice(2)}`;
    return {
      messageId,
      raw:
        head +
        `Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="${boundary}"\r\n\r\n` +
        `--${boundary}\r\n${entity}\r\n--${boundary}\r\nContent-Type: application/pgp-signature; name="signature.asc"\r\n\r\n` +
        `${signature.toString('utf8').replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`,
    };
  }
  return { messageId, raw: head + entity };
}

/** The members' copies of one post to an encrypted list: on the wire they carry the server's Message-ID, made from the spool id. */
export function copiesOfPost(messages: RelayMessage[], spoolId: string): RelayMessage[] {
  const prefix = `<${spoolId.toLowerCase()}.`;
  return messages.filter((message) => headerOf(message.raw, 'Message-ID')?.startsWith(prefix));
}

/** The armored OpenPGP message inside a received PGP/MIME copy. */
export function armoredPart(raw: Buffer | string): string {
  const text = raw.toString();
  const match = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(text);
  if (!match) throw new Error('no armored OpenPGP message in the copy');
  return match[0];
}

/** Decrypts a received copy with a member's own GnuPG home. */
export function decryptCopy(who: Person, message: RelayMessage): Promise<GpgResult> {
  return who.gpg.decrypt(armoredPart(message.raw));
}

export function headerOf(raw: Buffer | string, name: string): string | undefined {
  const head = raw.toString().split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, ' ');
  const line = head.split(/\r?\n/).find((candidate) => candidate.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

/** Text of the first text/plain part of a clear (signed) message, quoted-printable decoded. */
export function bodyText(raw: Buffer | string): string {
  const text = raw.toString();
  const parts = text.split(/Content-Type: text\/plain[^\r\n]*\r?\n/i);
  if (parts.length < 2) return text;
  const rest = parts[1];
  const qp = /Content-Transfer-Encoding: quoted-printable/i.test(rest.split(/\r?\n\r?\n/)[0]);
  const body = rest.split(/\r?\n\r?\n/).slice(1).join('\n\n').split(/\r?\n--/)[0];
  return qp ? body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))) : body;
}

/** Runs the embargo CLI as a user would (a separate process on the same config and database). */
export async function runCli(
  args: string[],
  options: { nodeArgs?: string[]; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { execFile } = await import('node:child_process');
  const { join } = await import('node:path');
  const { repoRoot } = await import('./daemon.ts');
  return new Promise((resolve) => {
    const argv = [...(options.nodeArgs ?? []), join(repoRoot, 'bin/embargo.js'), ...args];
    execFile(process.execPath, argv, { cwd: repoRoot, env: { ...process.env, CI: '1', ...options.env } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}
