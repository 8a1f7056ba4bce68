// `embargo keys check [--json]`: every member key problem across all lists; exit 1 when any problem blocks encryption.
import type { Command } from 'commander';
import type { MemberReport } from '../../ops/member-report.ts';
import { configOptionHelp } from '../config-dir.ts';
import { exitCodes } from '../exit-codes.ts';
import { loadConfigOrComplain, reportsWithBounces } from './members.ts';

export interface KeyFinding {
  list: string;
  address: string;
  fingerprint: string | null;
  expiresAt: string | null;
  code: string;
  blocking: boolean;
  detail: string;
}

export function keyFindings(reports: MemberReport[]): KeyFinding[] {
  return reports.flatMap((report) =>
    report.problems.map((problem) => ({
      list: report.list,
      address: report.address,
      fingerprint: report.fingerprint,
      expiresAt: report.expiresAt?.toISOString() ?? null,
      code: problem.code,
      blocking: problem.blocking,
      detail: problem.detail,
    })),
  );
}

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description("members' OpenPGP keys");

  keys
    .command('check')
    .description('check every member key of every list; exit 1 if a key cannot be encrypted to (missing, expired, revoked, ...)')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--json', 'print JSON: { members, problems, blocking }')
    .action(async (options: { config?: string; json?: boolean }) => {
      const config = await loadConfigOrComplain(options.config);
      if (!config) return;
      const reports = await reportsWithBounces(config);
      const findings = keyFindings(reports);
      const blocking = findings.filter((finding) => finding.blocking).length;
      if (options.json) {
        process.stdout.write(JSON.stringify({ members: reports.length, problems: findings, blocking }, null, 2) + '\n');
      } else if (findings.length === 0) {
        process.stdout.write(`all ${reports.length} member keys are usable\n`);
      } else {
        for (const finding of findings) {
          process.stdout.write(`${finding.list}  ${finding.address}  ${finding.blocking ? 'BLOCKING' : 'warning'}  ${finding.code}: ${finding.detail}\n`);
        }
        process.stdout.write(`${findings.length} problem${findings.length === 1 ? '' : 's'} (${blocking} blocking) in ${reports.length} member keys\n`);
      }
      if (blocking > 0) process.exitCode = exitCodes.failure;
    });

  for (const command of keys.commands) command.exitOverride();
}
