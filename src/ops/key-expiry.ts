// Weekly job: members whose key expires soon get a signed, encrypted reminder; the admins get one summary of who was reminded.
import type { Config, ListConfig, Member } from '../config/types.ts';
import type { MemberKey } from '../crypto/index.ts';
import { memberKey } from '../lists/keyring.ts';
import { adminAddresses, buildNotice } from '../lists/notices.ts';
import { listAddressFor } from '../lists/addresses.ts';
import type { Db } from '../store/database.ts';
import { counter } from '../util/metrics.ts';
import { dayMs, duration, enqueueListMail, type JobServices, type ListMail } from './jobs.ts';

const keyExpiryReminders = counter('embargo_key_expiry_reminders_total', 'Key-expiry reminders sent to members');

/** A reminder for the same key and expiry is not sent again within this time (the job runs weekly). */
export const reminderQuietMs = 7 * dayMs;

export interface ExpiringKey {
  address: string;
  organisation: string | null;
  fingerprint: string;
  expiresAt: Date;
  /** Lists (names) the member is on with this key. */
  lists: string[];
}

export interface KeyExpiryResult {
  /** Members reminded in this run (one reminder each). */
  reminded: ExpiringKey[];
  /** Members whose key expires soon but who were reminded about that key within the last week. */
  alreadyReminded: ExpiringKey[];
  /** Keys that have already expired (reported to the admins with the summary; encryption to them is impossible). */
  expired: ExpiringKey[];
  /** Admin summaries sent. */
  summaries: number;
}

interface Found {
  member: Member;
  list: ListConfig;
  key: MemberKey;
}

/** Every member key with an expiry before `horizon`, grouped by address (a member on several lists is one entry). */
async function keysExpiringBefore(config: Config, horizon: number): Promise<Map<string, Found[]>> {
  const byAddress = new Map<string, Found[]>();
  for (const list of config.lists.values()) {
    for (const member of list.members) {
      const key = await memberKey(member);
      if (!key?.expiresAt || key.expiresAt.getTime() > horizon) continue;
      const found = byAddress.get(member.address) ?? [];
      found.push({ member, list, key });
      byAddress.set(member.address, found);
    }
  }
  return byAddress;
}

function describe(found: Found[]): ExpiringKey {
  // The soonest-expiring key is the one to renew first (a member may be registered with different keys on different lists).
  const first = [...found].sort((a, b) => a.key.expiresAt!.getTime() - b.key.expiresAt!.getTime())[0];
  return {
    address: first.member.address,
    organisation: found.find((entry) => entry.member.organisation)?.member.organisation ?? null,
    fingerprint: first.key.fingerprint,
    expiresAt: first.key.expiresAt!,
    lists: [...new Set(found.filter((entry) => entry.key.fingerprint === first.key.fingerprint).map((entry) => entry.list.name))],
  };
}

function reminderText(config: Config, expiring: ExpiringKey, owner: string, now: Date): string {
  return [
    `Your OpenPGP key for ${expiring.address}`,
    '',
    `  ${expiring.fingerprint}`,
    '',
    `expires on ${expiring.expiresAt.toUTCString()} (in ${duration(expiring.expiresAt.getTime() - now.getTime())}).`,
    `It is registered for: ${expiring.lists.map((name) => `${name}@${config.server.domain}`).join(', ')}.`,
    '',
    'After it expires, these lists can no longer encrypt mail to you: posts are withheld from you',
    'until a valid key is configured. Please extend the expiry of the key and of its encryption subkey,',
    'for example with GnuPG:',
    '',
    `  gpg --quick-set-expire ${expiring.fingerprint} 1y`,
    `  gpg --quick-set-expire ${expiring.fingerprint} 1y '*'`,
    `  gpg --armor --export ${expiring.fingerprint} > key.asc`,
    '',
    `and send the updated public key (key.asc) to ${owner}.`,
    '',
    'You get this reminder at most once a week while the key is about to expire.',
  ].join('\n');
}

/**
 * The weekly key-expiry job. A member whose key expires within `schedules.keyExpiryWarningDays` gets exactly one
 * reminder per run (signed by a list they are on and encrypted to the key that is about to expire), unless they were
 * reminded about the same key and expiry within the last week. Admins get one summary of the members reminded.
 */
export async function runKeyExpiryWarnings(services: JobServices, now: Date): Promise<KeyExpiryResult> {
  const config = services.config();
  const { db } = services;
  const warningMs = config.server.schedules.keyExpiryWarningDays * dayMs;
  const byAddress = await keysExpiringBefore(config, now.getTime() + warningMs);
  const remindedRecently = db.prepare(
    'SELECT 1 FROM key_reminders WHERE address = ? AND fingerprint = ? AND expires_at = ? AND sent_at > ? AND sent_at <= ? LIMIT 1',
  );

  const result: KeyExpiryResult = { reminded: [], alreadyReminded: [], expired: [], summaries: 0 };
  const mail: ListMail[] = [];
  for (const found of byAddress.values()) {
    const expiring = describe(found);
    if (expiring.expiresAt.getTime() <= now.getTime()) {
      result.expired.push(expiring);
      continue;
    }
    const recent = remindedRecently.get(expiring.address, expiring.fingerprint, expiring.expiresAt.getTime(), now.getTime() - reminderQuietMs, now.getTime());
    if (recent) {
      result.alreadyReminded.push(expiring);
      continue;
    }
    const speaking = found.find((entry) => entry.key.fingerprint === expiring.fingerprint)!.list;
    const owner = listAddressFor(speaking, 'owner', config.server.domain);
    const batches = await buildNotice(
      config,
      speaking,
      await services.listKey(speaking.name),
      {
        to: [expiring.address],
        subject: `Your OpenPGP key expires on ${expiring.expiresAt.toISOString().slice(0, 10)}`,
        text: reminderText(config, expiring, owner, now),
        sensitive: false,
        encryptWhenPossible: true,
        autoSubmitted: 'auto-generated',
      },
      now,
    );
    mail.push({ list: speaking, batches });
    result.reminded.push(expiring);
  }

  if (result.reminded.length > 0) mail.push(...(await adminSummaries(services, config, result, now)));
  result.summaries = mail.length - result.reminded.length;

  const record = db.prepare('INSERT OR IGNORE INTO key_reminders (address, fingerprint, expires_at, sent_at) VALUES (?, ?, ?, ?)');
  db.transaction(() => {
    enqueueListMail(db, mail);
    for (const expiring of result.reminded) record.run(expiring.address, expiring.fingerprint, expiring.expiresAt.getTime(), now.getTime());
  })();
  keyExpiryReminders.inc(result.reminded.length);
  services.logger.info(
    { reminded: result.reminded.length, alreadyReminded: result.alreadyReminded.length, expired: result.expired.length, summaries: result.summaries },
    'key-expiry warnings done',
  );
  return result;
}

/** One summary per admin, covering the lists they administer (server admins: all lists), from the first such list. */
async function adminSummaries(services: JobServices, config: Config, result: KeyExpiryResult, now: Date): Promise<ListMail[]> {
  const perAdmin = new Map<string, ListConfig[]>();
  for (const list of config.lists.values()) {
    for (const admin of adminAddresses(config, list)) perAdmin.set(admin, [...(perAdmin.get(admin) ?? []), list]);
  }
  // No organisation: admins without a key get the summary in clear, and queue rows must not carry organisations.
  const line = (entry: ExpiringKey, verb: string) =>
    `  ${entry.address}: key ${entry.fingerprint} ${verb} ${entry.expiresAt.toISOString().slice(0, 10)} [${entry.lists.join(', ')}]`;
  const mail: ListMail[] = [];
  for (const [admin, lists] of perAdmin) {
    const names = new Set(lists.map((list) => list.name));
    const mine = (entry: ExpiringKey) => entry.lists.some((name) => names.has(name));
    const reminded = result.reminded.filter(mine);
    if (reminded.length === 0) continue;
    const expired = result.expired.filter(mine);
    const text = [
      `Members whose OpenPGP key expires within ${config.server.schedules.keyExpiryWarningDays} days were sent a reminder today:`,
      '',
      ...reminded.map((entry) => line(entry, 'expires')),
      ...(expired.length > 0
        ? ['', 'These keys have already EXPIRED; list mail to these members is withheld until their key is renewed:', '', ...expired.map((entry) => line(entry, 'expired'))]
        : []),
      '',
      'When a member sends a renewed key, replace their key file in config/keys/ (the daemon reloads it).',
      'Check all keys at any time with: embargo keys check',
    ].join('\n');
    const speaking = lists[0];
    const batches = await buildNotice(
      config,
      speaking,
      await services.listKey(speaking.name),
      {
        to: [admin],
        subject: `Key expiry: ${reminded.length} member key${reminded.length === 1 ? '' : 's'} expire${reminded.length === 1 ? 's' : ''} soon`,
        text,
        sensitive: false,
        // Membership of private lists is not for the wire in clear.
        encryptWhenPossible: true,
        autoSubmitted: 'auto-generated',
      },
      now,
    );
    mail.push({ list: speaking, batches });
  }
  return mail;
}

/** Reminder records sent before `before` go (the cleanup job); returns how many. */
export function forgetRemindersBefore(db: Db, before: number): number {
  return db.prepare('DELETE FROM key_reminders WHERE sent_at < ?').run(before).changes;
}
