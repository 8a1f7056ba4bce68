// `embargo members NAME [--json]`: each member's organisation, roles, key fingerprint and expiry, key problems and bounce state.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../../config/types.ts';
import { databaseFile } from '../../data-dir.ts';
import { migrations } from '../../schema.ts';
import { memberReports, reportJson, type MemberReport } from '../../ops/member-report.ts';
import { openDatabase } from '../../store/database.ts';
import { configOptionHelp } from '../config-dir.ts';

export { loadConfigOrComplain } from '../load.ts';
import { listNameOrComplain, loadConfigOrComplain } from '../load.ts';

/** Reports with bounce state from the database when there is one (a fresh install has none yet: nothing bounced). */
export async function reportsWithBounces(config: Config, lists?: string[]): Promise<MemberReport[]> {
  const file = databaseFile(config);
  const db = existsSync(file) ? openDatabase(file, migrations) : null;
  try {
    return await memberReports(config, { db, lists });
  } finally {
    db?.close();
  }
}

const day = (date: Date | null) => (date ? date.toISOString().slice(0, 10) : 'never');

function bounceText(report: MemberReport): string {
  if (!report.bounce) return 'no bounces';
  const { bounce } = report;
  const state = bounce.suspended ? `SUSPENDED since ${day(bounce.suspendedAt)}` : 'active';
  return `${state}, score ${bounce.score.toFixed(2)}, ${bounce.bouncesTotal} bounce${bounce.bouncesTotal === 1 ? '' : 's'}`;
}

/** One block per member: easy to read, and the key problems get a line each. */
export function formatMembers(reports: MemberReport[]): string {
  if (reports.length === 0) return 'no members';
  const blocks = reports.map((report) => {
    const lines = [
      `${report.address}${report.organisation ? `  (${report.organisation})` : ''}`,
      `  roles:     ${report.roles.join(', ')}${report.inheritedFrom ? ` (a member of ${report.inheritedFrom}: membersFrom)` : ''}`,
      `  key:       ${report.fingerprint ?? 'none'}${report.algorithm ? ` (${report.algorithm})` : ''}`,
      `  expires:   ${report.fingerprint ? day(report.expiresAt) : '-'}`,
      // A member of a public list needs no key: nothing is encrypted to them.
      `  usable:    ${report.usable ? 'yes' : !report.fingerprint && report.problems.length === 0 ? '- (no key; this list does not encrypt)' : 'NO'}`,
      `  delivery:  ${bounceText(report)}`,
    ];
    for (const problem of report.problems) lines.push(`  problem:   ${problem.blocking ? 'BLOCKING ' : ''}${problem.code}: ${problem.detail}`);
    return lines.join('\n');
  });
  return blocks.join('\n\n');
}

export function registerMembers(program: Command): void {
  program
    .command('members')
    .description("show a list's members: organisation, roles, key fingerprint and expiry, key problems, bounce state")
    .argument('<list>', 'the list name (the local part, e.g. xen-security-issues)')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--json', 'one JSON array, for scripts')
    .action(async (name: string, options: { config?: string; json?: boolean }) => {
      const config = await loadConfigOrComplain(options.config);
      if (!config) return;
      const listName = listNameOrComplain(config, name);
      if (!listName) return;
      const reports = await reportsWithBounces(config, [listName]);
      process.stdout.write((options.json ? JSON.stringify(reports.map(reportJson), null, 2) : formatMembers(reports)) + '\n');
    });
}
