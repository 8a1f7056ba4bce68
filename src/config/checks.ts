// Checks that need more than one field or more than one file: duplicate members, colliding addresses, announce/publish rules.
import type { ParsedList } from './loader.ts';
import type { SourceFile } from './source.ts';
import type { ConfigError, ServerConfig } from './types.ts';

const reservedSuffixes = ['-request', '-owner', '-sendkey', '-bounces'] as const;

export function crossListErrors(lists: ParsedList[], server: ServerConfig | null, serverSource: SourceFile | null, refused: ReadonlySet<string> = new Set()): ConfigError[] {
  const errors: ConfigError[] = [];
  const byName = new Map(lists.map((list) => [list.name, list]));
  const listAddresses = new Set<string>();
  if (server) {
    const domain = server.domain.toLowerCase();
    for (const list of lists) {
      listAddresses.add(`${list.name}@${domain}`);
      for (const suffix of reservedSuffixes) listAddresses.add(`${list.name}${suffix}@${domain}`);
    }
  }

  if (server && serverSource) {
    server.admins.forEach((admin, position) => {
      if (listAddresses.has(admin.toLowerCase())) {
        errors.push(serverSource.error(['admins', position], `${admin} is an address of this server; admin notices sent there would loop`));
      }
    });
  }

  for (const list of lists) {
    const { source, settings, name } = list;

    for (const suffix of reservedSuffixes) {
      if (name.endsWith(suffix) && byName.has(name.slice(0, -suffix.length))) {
        errors.push(
          source.error([], `list name '${name}' collides with the ${suffix} address of list '${name.slice(0, -suffix.length)}'; rename one of them`),
        );
      }
    }

    const seen = new Map<string, number>();
    settings.members.forEach((member, position) => {
      const address = member.email.toLowerCase();
      const first = seen.get(address);
      if (first !== undefined) {
        const firstLine = source.positionOf(['members', first, 'email']).line;
        errors.push(source.error(['members', position, 'email'], `duplicate member ${address} (already listed at line ${firstLine})`));
      } else {
        seen.set(address, position);
      }
      if (listAddresses.has(address)) {
        errors.push(source.error(['members', position, 'email'], `${address} is an address of this server; a list cannot be a member (mail loop)`));
      }
    });

    if (settings.kind === 'announce' && !settings.members.some((member) => member.roles.includes('poster'))) {
      errors.push(
        source.error(
          settings.members.length > 0 ? ['members'] : ['kind'],
          "announce list has no member with role 'poster', so nobody could post to it; give the security team roles: [poster, recipient]",
          'key',
        ),
      );
    }

    if (settings.archive === 'public' && settings.kind !== 'public') {
      errors.push(source.error(['archive'], `archive: public is only allowed on kind: public lists; a ${settings.kind} list carries encrypted mail, use private or none`));
    }

    if (settings.maxMessageBytes !== undefined && server && settings.maxMessageBytes > server.smtp.maxMessageBytes) {
      errors.push(
        source.error(
          ['maxMessageBytes'],
          `maxMessageBytes ${settings.maxMessageBytes} is larger than smtp.maxMessageBytes ${server.smtp.maxMessageBytes} in server.yaml, which the SMTP server enforces first`,
        ),
      );
    }

    checkAnnounceOnly(list, errors);
    checkPublishTo(list, byName, errors);
    checkDiscussionList(list, byName, refused, errors);
    checkEmbargoPattern(list, errors);
    checkAdvisoryPattern(list, errors);
  }
  return errors;
}

function checkAnnounceOnly({ source, settings }: ParsedList, errors: ConfigError[]): void {
  if (settings.kind === 'announce') return;
  // These keys only mean something on announce lists; accepting them elsewhere would suggest a behaviour that never happens.
  const present = source.value as Record<string, unknown>;
  for (const key of ['publishTo', 'mailOnRelease', 'embargoPattern', 'advisoryPattern', 'discussionList']) {
    if (key in present) errors.push(source.error([key], `${key} only applies to kind: announce lists`, 'key'));
  }
}

function checkPublishTo({ source, settings }: ParsedList, byName: Map<string, ParsedList>, errors: ConfigError[]): void {
  if (settings.kind !== 'announce') return;
  if (settings.publishTo === undefined) {
    if (settings.mailOnRelease) errors.push(source.error(['mailOnRelease'], 'mailOnRelease needs publishTo: the public list whose subscribers get released advisories', 'key'));
    return;
  }
  const target = byName.get(settings.publishTo);
  if (!target) {
    const names = [...byName.values()].filter((list) => list.settings.kind === 'public').map((list) => list.name);
    errors.push(
      source.error(
        ['publishTo'],
        `publishTo names list '${settings.publishTo}', which does not exist (no lists/${settings.publishTo}.yaml)${names.length > 0 ? `; public lists: ${names.join(', ')}` : ''}`,
      ),
    );
    return;
  }
  if (target.settings.kind !== 'public' || target.settings.archive !== 'public') {
    errors.push(
      source.error(
        ['publishTo'],
        `publishTo names list '${settings.publishTo}', which is not public (it must have kind: public and archive: public to publish released advisories)`,
      ),
    );
  }
}

function checkDiscussionList({ source, settings }: ParsedList, byName: Map<string, ParsedList>, refused: ReadonlySet<string>, errors: ConfigError[]): void {
  if (settings.kind !== 'announce' || settings.discussionList === undefined || refused.has(settings.discussionList)) return;
  const target = byName.get(settings.discussionList);
  if (!target) {
    const names = [...byName.values()].filter((list) => list.settings.kind === 'discussion').map((list) => list.name);
    errors.push(source.error(['discussionList'], `discussionList names list '${settings.discussionList}', which does not exist (no lists/${settings.discussionList}.yaml)${names.length > 0 ? `; discussion lists: ${names.join(', ')}` : ''}`));
  } else if (target.settings.kind !== 'discussion') {
    errors.push(source.error(['discussionList'], `discussionList names list '${settings.discussionList}', which is a ${target.settings.kind} list, not kind: discussion`));
  }
}

function checkEmbargoPattern({ source, settings }: ParsedList, errors: ConfigError[]): void {
  if (settings.embargoPattern === undefined) return;
  let pattern: RegExp;
  try {
    pattern = new RegExp(settings.embargoPattern);
  } catch (failure) {
    errors.push(source.error(['embargoPattern'], `embargoPattern is not a valid regular expression: ${(failure as Error).message}`));
    return;
  }
  // An alternation with the empty string always matches, which reveals how many groups the pattern has.
  const groups = new RegExp(`${pattern.source}|`).exec('')!.length - 1;
  if (groups < 1) {
    errors.push(source.error(['embargoPattern'], 'embargoPattern needs a capturing group ( ... ) around the embargo date and time'));
  }
}

function checkAdvisoryPattern({ source, settings }: ParsedList, errors: ConfigError[]): void {
  if (settings.advisoryPattern === undefined) return;
  try {
    const pattern = new RegExp(settings.advisoryPattern);
    // A pattern that matches nothing would give every post the same empty id: every post a revision of one advisory.
    if (pattern.test('')) errors.push(source.error(['advisoryPattern'], 'advisoryPattern matches the empty text; it must match an advisory id such as XSA-[0-9]+'));
  } catch (failure) {
    errors.push(source.error(['advisoryPattern'], `advisoryPattern is not a valid regular expression: ${(failure as Error).message}`));
  }
}
