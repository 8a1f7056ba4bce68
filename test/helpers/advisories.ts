// An advisory test world: the list world with advisories on, posts and signed commands as the security team sends them.
import { releaseDue, type ReleaseOutcome } from '../../src/advisories/release.ts';
import { ensureListKey, type ListKey } from '../../src/crypto/index.ts';
import { announce, buildPost, decryptCopy, domain, headerOf, publicList, startListWorld, type ListWorld, type ListWorldOptions, type Person } from './lists.ts';
import type { RelayMessage } from './relay.ts';

export const advisorySettings = {
  advisoryPattern: 'XSA-[0-9]+',
  embargoPattern: '^Embargo-Until: (\\S+)',
  publishTo: publicList,
  mailOnRelease: true,
};

export const announceAddress = `${announce}@${domain}`;
export const requestAddress = `${announce}-request@${domain}`;

export function startAdvisoryWorld(options: ListWorldOptions = {}): Promise<ListWorld> {
  return startListWorld({ ...options, announce: { ...advisorySettings, ...options.announce } });
}

/** An RFC 3339 time `hours` from now, to the second. */
export function hoursFromNow(hours: number): string {
  return new Date(Math.floor(Date.now() / 1000) * 1000 + hours * 3_600_000).toISOString().replace('.000Z', 'Z');
}

/** The security team posts a signed and encrypted advisory; resolves once the pipeline is done with it. */
export async function postAdvisory(
  world: ListWorld,
  post: { subject: string; body: string; from?: Person; headers?: Record<string, string>; innerHeaders?: Record<string, string>; outerSubject?: string; messageId?: string },
): Promise<{ spoolId: string; messageId: string; raw: string }> {
  const from = post.from ?? world.security;
  // As Thunderbird and K-9 send it: the real Subject inside the encryption, a placeholder outside.
  const built = await buildPost(world, {
    from,
    to: announceAddress,
    subject: post.outerSubject ?? '...',
    body: post.body,
    headers: post.headers,
    innerHeaders: { Subject: post.subject, ...post.innerHeaders },
    messageId: post.messageId,
  });
  const spoolId = await world.send(from.address, [announceAddress], built.raw);
  const state = await world.waitForState(spoolId, ['done', 'rejected', 'held', 'shunted', 'discarded']);
  if (state !== 'done') throw new Error(`advisory post ended ${state}`);
  await world.settle();
  return { spoolId, messageId: built.messageId, raw: built.raw };
}

/** A command to LIST-request@: signed and encrypted to the announce list by `from` unless said otherwise. */
export async function buildCommand(world: ListWorld, from: Person, body: string, options: { signed?: boolean; encrypted?: boolean } = {}): Promise<string> {
  const built = await buildPost(world, {
    from,
    to: requestAddress,
    subject: 'commands',
    body,
    signer: options.signed === false ? null : from,
    encryptTo: options.encrypted === false ? null : announce,
  });
  return built.raw;
}

/** Sends a command mail and waits until it is processed; returns the relay messages it caused. */
export async function sendCommand(world: ListWorld, envelopeFrom: string, raw: string): Promise<RelayMessage[]> {
  const mark = world.relay.messages.length;
  const spoolId = await world.send(envelopeFrom, [requestAddress], raw);
  await world.waitForState(spoolId, ['done', 'rejected', 'discarded', 'shunted']);
  return world.settle(mark);
}

/** The text of the reply (or notice) a person got among `messages`, decrypted with their key where it is encrypted. */
export async function readMail(who: Person, messages: RelayMessage[], subjectHint?: RegExp): Promise<string[]> {
  const texts: string[] = [];
  for (const message of messages.filter((candidate) => candidate.to.includes(who.address))) {
    const raw = message.raw.toString();
    const text = raw.includes('-----BEGIN PGP MESSAGE-----') ? (await decryptCopy(who, message)).stdout.toString() : raw;
    // Quoted-printable soft line breaks undone, so a long line reads as one.
    const readable = text.replace(/=\r?\n/g, '');
    if (!subjectHint || subjectHint.test(readable)) texts.push(readable);
  }
  return texts;
}

/** One release pass of the running daemon's database at a chosen time (the test drives the clock). */
export async function releaseAt(world: ListWorld, at: Date): Promise<ReleaseOutcome[]> {
  const daemon = world.daemon.daemon!;
  const keys = new Map<string, ListKey>();
  for (const name of daemon.config().lists.keys()) keys.set(name, await ensureListKey({ dataDir: world.daemon.config.dataDir, listName: name, domain }));
  return releaseDue(daemon.db, at, { config: daemon.config, listKeys: (name) => keys.get(name) });
}

export function advisoryRow(world: ListWorld, advisoryId: string): { state: string; embargo_until: number | null; revision: number; published_revision: number | null; published_message_id: string | null } | undefined {
  return world.daemon.daemon!.db.prepare('SELECT state, embargo_until, revision, published_revision, published_message_id FROM advisories WHERE advisory_id = ?').get(advisoryId) as
    | { state: string; embargo_until: number | null; revision: number; published_revision: number | null; published_message_id: string | null }
    | undefined;
}

/** Every body the public archive pages show for a search, with the search box's echo removed. */
export async function publicSearch(world: ListWorld, term: string): Promise<string> {
  const base = `http://127.0.0.1:${world.daemon.httpPort}`;
  return (await (await fetch(`${base}/lists/${publicList}/search?q=${encodeURIComponent(term)}`)).text()).replace(/ value="[^"]*"/, '');
}

export function messagesWithId(messages: RelayMessage[], messageId: string): RelayMessage[] {
  return messages.filter((message) => headerOf(message.raw, 'Message-ID') === `<${messageId}>`);
}
