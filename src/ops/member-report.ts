// What admins need to know about each member: key fingerprint, expiry, usability problems and bounce state.
import type { Config, ListConfig, Member } from '../config/types.ts';
import type { KeyProblem } from '../crypto/index.ts';
import { keyUsability, memberKey } from '../lists/keyring.ts';
import { listBounceRecords } from '../queues/bounce-scores.ts';
import type { Db } from '../store/database.ts';

export interface BounceState {
  score: number;
  bouncesTotal: number;
  lastBounceAt: Date | null;
  lastReason: string | null;
  /** Delivery to this member on this list is suspended until an admin runs `embargo bounces reset`. */
  suspended: boolean;
  suspendedAt: Date | null;
}

export interface MemberReport {
  list: string;
  address: string;
  organisation: string | null;
  roles: string[];
  /** The list this member comes from (`membersFrom`); null when written in the list's own file. */
  inheritedFrom: string | null;
  /** null: no key configured, or it cannot be read. */
  fingerprint: string | null;
  /** null: never expires (or no key). */
  expiresAt: Date | null;
  algorithm: string | null;
  /** Whether mail can be encrypted to this member now. */
  usable: boolean;
  problems: KeyProblem[];
  /** null: the member never bounced (or there is no database yet). */
  bounce: BounceState | null;
}

async function reportOne(
  list: ListConfig,
  member: Member,
  now: Date,
  bounces: Map<string, BounceState>,
  expiresSoonDays: number,
): Promise<MemberReport> {
  const key = await memberKey(member);
  // "Expires soon" means the same here as in the weekly reminder job, so the two never disagree about a member.
  const usability = await keyUsability(member, now, { expiresSoonDays });
  return {
    list: list.name,
    address: member.address,
    organisation: member.organisation ?? null,
    roles: [...member.roles],
    inheritedFrom: member.inheritedFrom ?? null,
    fingerprint: key?.fingerprint ?? null,
    expiresAt: key?.expiresAt ?? null,
    algorithm: key?.algorithm ?? null,
    usable: usability.usable,
    problems: usability.problems,
    bounce: bounces.get(`${list.name}\n${member.address}`) ?? null,
  };
}

/** Bounce records by `list\naddress`, read once for all members. */
function bounceStates(db: Db | null, now: Date): Map<string, BounceState> {
  const states = new Map<string, BounceState>();
  if (!db) return states;
  for (const record of listBounceRecords(db, { now: now.getTime() })) {
    states.set(`${record.list}\n${record.address}`, {
      score: Math.round(record.score * 100) / 100,
      bouncesTotal: record.bouncesTotal,
      lastBounceAt: record.lastBounceAt === null ? null : new Date(record.lastBounceAt),
      lastReason: record.lastReason,
      suspended: record.suspendedAt !== null,
      suspendedAt: record.suspendedAt === null ? null : new Date(record.suspendedAt),
    });
  }
  return states;
}

/**
 * One report per member of the given lists (default: every list), in config order. Members of a public list without
 * a key are normal there (nothing is encrypted to them), so their missing key is not reported as a problem.
 */
export async function memberReports(config: Config, options: { db?: Db | null; now?: Date; lists?: string[] } = {}): Promise<MemberReport[]> {
  const now = options.now ?? new Date();
  const bounces = bounceStates(options.db ?? null, now);
  const reports: MemberReport[] = [];
  for (const list of config.lists.values()) {
    if (options.lists && !options.lists.includes(list.name)) continue;
    for (const member of list.members) {
      const report = await reportOne(list, member, now, bounces, config.server.schedules.keyExpiryWarningDays);
      if (list.kind === 'public' && !member.armoredKey) report.problems = [];
      reports.push(report);
    }
  }
  return reports;
}

/** The same report as plain JSON values (dates as ISO strings), for `--json`. */
export function reportJson(report: MemberReport) {
  return {
    list: report.list,
    address: report.address,
    organisation: report.organisation,
    roles: report.roles,
    inheritedFrom: report.inheritedFrom,
    fingerprint: report.fingerprint,
    expiresAt: report.expiresAt?.toISOString() ?? null,
    algorithm: report.algorithm,
    usable: report.usable,
    problems: report.problems.map((problem) => ({ code: problem.code, blocking: problem.blocking, detail: problem.detail })),
    bounce: report.bounce
      ? {
          score: report.bounce.score,
          bouncesTotal: report.bounce.bouncesTotal,
          lastBounceAt: report.bounce.lastBounceAt?.toISOString() ?? null,
          lastReason: report.bounce.lastReason,
          suspended: report.bounce.suspended,
          suspendedAt: report.bounce.suspendedAt?.toISOString() ?? null,
        }
      : null,
  };
}
