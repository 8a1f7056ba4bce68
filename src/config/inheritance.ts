// Membership by organisation: a list's `membersFrom` adds every member of the named lists, so one file decides who is in.
import type { ParsedList } from './loader.ts';
import type { Role } from './schema.ts';
import type { ConfigError, ListConfig, Member } from './types.ts';

/** Roles an inherited member gets when the list does not say (`membersFromRoles`). */
export function defaultInheritedRoles(kind: ListConfig['kind']): Role[] {
  // On a sharing list every pre-disclosure member both reads and writes; elsewhere inheriting means receiving.
  return kind === 'discussion' ? ['recipient', 'poster'] : ['recipient'];
}

/**
 * Adds inherited members to each list with `membersFrom`, in place. A member written in the list's own file wins over
 * an inherited entry with the same address; among the named lists, the first that has the address wins. Inheritance
 * is transitive. Unknown names and loops are errors at the `membersFrom` entry that causes them.
 */
export function inheritMembers(parsed: ParsedList[], lists: Map<string, ListConfig>, errors: ConfigError[], refused: ReadonlySet<string> = new Set()): void {
  const byName = new Map(parsed.map((list) => [list.name, list]));
  const state = new Map<string, 'resolving' | 'done'>();

  const resolve = (name: string, trail: string[]): Member[] => {
    const list = lists.get(name);
    const source = byName.get(name);
    if (!list || !source) return [];
    if (state.get(name) === 'done') return list.members;
    state.set(name, 'resolving');
    const names = source.settings.membersFrom ?? [];
    const roles = source.settings.membersFromRoles ?? defaultInheritedRoles(list.kind);
    const members = [...list.members];
    const present = new Set(members.map((member) => member.address));
    names.forEach((from, position) => {
      if (refused.has(from)) return; // its own file's errors are reported already
      if (!byName.has(from)) {
        const known = [...byName.keys()].filter((other) => other !== name);
        errors.push(source.source.error(['membersFrom', position], `membersFrom names list '${from}', which does not exist (no lists/${from}.yaml)${known.length > 0 ? `; lists: ${known.join(', ')}` : ''}`));
        return;
      }
      if (from === name || state.get(from) === 'resolving') {
        const start = trail.indexOf(from);
        const cycle = start === -1 ? [name, from] : [...trail.slice(start), name, from];
        errors.push(source.source.error(['membersFrom', position], `membersFrom makes a loop: ${cycle.join(' -> ')}; a list cannot (even indirectly) inherit its own members`));
        return;
      }
      for (const member of resolve(from, [...trail, name])) {
        if (present.has(member.address)) continue;
        present.add(member.address);
        members.push({ ...member, roles, inheritedFrom: from });
      }
    });
    list.members = members;
    state.set(name, 'done');
    return members;
  };

  for (const list of parsed) {
    if (list.settings.membersFromRoles !== undefined && list.settings.membersFrom === undefined) {
      errors.push(list.source.error(['membersFromRoles'], 'membersFromRoles needs membersFrom: the lists whose members this list inherits', 'key'));
    }
    resolve(list.name, []);
  }
}
