// Member keys of a list, parsed once per armored text (parsing costs milliseconds) and checked for usability.
import * as crypto from '../crypto/index.ts';
import type { KeyProblem, MemberKey } from '../crypto/index.ts';
import type { Config, ListConfig, Member } from '../config/types.ts';

const parsed = new Map<string, Promise<MemberKey | null>>();

/** The member's parsed key, or null when none is configured or it cannot be read. */
export function memberKey(member: Member): Promise<MemberKey | null> {
  const armored = member.armoredKey;
  if (!armored) return Promise.resolve(null);
  let entry = parsed.get(armored);
  if (!entry) {
    entry = crypto.parseMemberKey(armored).catch(() => null);
    parsed.set(armored, entry);
  }
  return entry;
}

/** Members with a readable key, in the shape openMessage binds signatures against. */
export async function signingMembers(list: ListConfig): Promise<Array<{ address: string; key: MemberKey }>> {
  const result: Array<{ address: string; key: MemberKey }> = [];
  for (const member of list.members) {
    const key = await memberKey(member);
    if (key) result.push({ address: member.address, key });
  }
  return result;
}

export type KeyUsability = { usable: true; key: MemberKey; problems: KeyProblem[] } | { usable: false; problems: KeyProblem[] };

/**
 * Whether we can encrypt to this member now; a missing key is reported as a blocking problem like the others.
 * `expiresSoonDays` is how far ahead an expiry counts as "expires soon" (admins set it as schedules.keyExpiryWarningDays).
 */
export async function keyUsability(member: Member, now: Date, options: { expiresSoonDays?: number } = {}): Promise<KeyUsability> {
  const key = await memberKey(member);
  if (!key) {
    const detail = member.armoredKey ? 'the configured key cannot be read' : 'no key is configured';
    return { usable: false, problems: [{ code: 'unreadable', blocking: true, detail }] };
  }
  const problems = await crypto.checkMemberKey(key, member.address, now, options);
  if (problems.some((problem) => problem.blocking)) return { usable: false, problems };
  return { usable: true, key, problems };
}

/** Words for admins: why a key is not usable. */
export function describeProblems(problems: KeyProblem[]): string {
  const blocking = problems.filter((problem) => problem.blocking);
  return (blocking.length > 0 ? blocking : problems).map((problem) => `${problem.code}: ${problem.detail}`).join('; ');
}

/**
 * Parses and checks every member key of every list, resolves each usable key's encryption packet, and self-tests each
 * list key by sealing a small post to its members, so a post right after a start or a reload pays no more than the
 * next one (the daemon calls it when the config loads). Returns what admins need to know.
 */
export async function prepareMemberKeys(
  config: Config,
  listKey: (listName: string) => Promise<crypto.ListKey>,
  now: Date = new Date(),
): Promise<{ usable: number; failedSelfTests: Array<{ list: string; detail: string }> }> {
  let usable = 0;
  const failedSelfTests: Array<{ list: string; detail: string }> = [];
  for (const list of config.lists.values()) {
    const recipients: crypto.Recipient[] = [];
    for (const member of list.members) {
      const usability = await keyUsability(member, now);
      if (!usability.usable) continue;
      await crypto.encryptionPacketOf(usability.key, now);
      recipients.push({ address: member.address, key: usability.key });
    }
    usable += recipients.length;
    const result = await crypto.selfTestListKey(await listKey(list.name), list.address, recipients);
    if (!result.ok) failedSelfTests.push({ list: list.name, detail: result.detail });
  }
  return { usable, failedSelfTests };
}
