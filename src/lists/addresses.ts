// Maps an envelope address to the list and the role of that address (post, -request, -owner, -sendkey, -bounces+TOKEN).
import type { Config, ListConfig } from '../config/types.ts';

export type AddressRole = 'post' | 'request' | 'owner' | 'sendkey' | 'bounces';

export interface ListAddress {
  list: ListConfig;
  role: AddressRole;
  /** The VERP token of NAME-bounces+TOKEN@, when present. */
  token?: string;
}

const suffixes: Array<[string, AddressRole]> = [
  ['-request', 'request'],
  ['-owner', 'owner'],
  ['-sendkey', 'sendkey'],
  ['-bounces', 'bounces'],
];

/** Returns the list address an envelope recipient names, or null: we accept mail for nothing else (never an open relay). */
export function resolveListAddress(config: Config, address: string): ListAddress | null {
  const at = address.lastIndexOf('@');
  if (at <= 0) return null;
  const domain = address.slice(at + 1).toLowerCase();
  if (domain !== config.server.domain.toLowerCase()) return null;
  const local = address.slice(0, at).toLowerCase();
  // Anything but a plain local part (quoted strings, %-hacks, source routes) is not one of ours.
  if (!/^[a-z0-9._+-]+$/.test(local)) return null;

  const direct = config.lists.get(local);
  if (direct) return { list: direct, role: 'post' };

  const plus = local.indexOf('+');
  const base = plus >= 0 ? local.slice(0, plus) : local;
  const token = plus >= 0 ? local.slice(plus + 1) : undefined;
  for (const [suffix, role] of suffixes) {
    if (!base.endsWith(suffix)) continue;
    const list = config.lists.get(base.slice(0, -suffix.length));
    if (!list) continue;
    if (token !== undefined && role !== 'bounces') return null;
    return token !== undefined ? { list, role, token } : { list, role };
  }
  return null;
}

/**
 * Whether the envelope sender is registered to post to a list among the recipients: a poster of an announce list, a
 * member of a discussion list. A scheduling hint only (envelope senders are not authenticated): the signature decides.
 */
export function isRegisteredPoster(config: Config, recipients: string[], sender: string): boolean {
  const address = sender.toLowerCase();
  if (!address) return false;
  return recipients.some((recipient) => {
    const target = resolveListAddress(config, recipient);
    if (target?.role !== 'post' || target.list.kind === 'public') return false;
    const member = target.list.members.find((each) => each.address === address);
    return member !== undefined && (target.list.kind === 'discussion' || member.roles.includes('poster'));
  });
}

/** RFC 5321 §4.5.1: postmaster@DOMAIN, in any letter case, and the bare <Postmaster> must be accepted. */
export function isPostmasterAddress(config: Config, address: string): boolean {
  const lower = address.toLowerCase();
  return lower === 'postmaster' || lower === `postmaster@${config.server.domain.toLowerCase()}`;
}

/**
 * The list that speaks for the server in mail that belongs to no list (postmaster forwards): its key signs, its
 * -owner address is the From and its -bounces address the return path. The first list by name, so the choice is the
 * same on every start and reload; null when no list is configured.
 */
export function serverNoticeList(config: Config): ListConfig | null {
  const [first] = [...config.lists.keys()].sort();
  return first === undefined ? null : (config.lists.get(first) ?? null);
}

export function listAddressFor(list: ListConfig, role: AddressRole, domain: string, token?: string): string {
  const suffix = role === 'post' ? '' : `-${role}`;
  return `${list.name}${suffix}${token ? `+${token}` : ''}@${domain}`;
}
