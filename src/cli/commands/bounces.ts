// `embargo bounces`: members' bounce scores and suspensions per list; `bounces reset NAME ADDRESS` re-enables delivery.
import type { Command } from 'commander';
import { listBounceRecords, resetBounces } from '../../queues/bounce-scores.ts';
import { countSuspendedRows } from '../../queues/outbound.ts';
import { exitCodes } from '../exit-codes.ts';
import { configOptionHelp } from '../config-dir.ts';
import { openConfiguredDatabase } from './queue.ts';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function registerBounces(program: Command): void {
  const bounces = program
    .command('bounces')
    .description('show members with bounces: decayed score, count, last reason, and whether delivery is suspended')
    .argument('[list]', 'only this list (its name, the local part)')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--json', 'print JSON')
    .action(async (list: string | undefined, options: { config?: string; json?: boolean }) => {
      const db = await openConfiguredDatabase(options.config);
      if (!db) return;
      try {
        const records = listBounceRecords(db, list ? { list: list.toLowerCase() } : {});
        if (options.json) {
          const json = records.map((record) => ({
            ...record,
            score: Math.round(record.score * 100) / 100,
            lastBounceAt: iso(record.lastBounceAt),
            suspendedAt: iso(record.suspendedAt),
          }));
          process.stdout.write(JSON.stringify(json, null, 2) + '\n');
          return;
        }
        if (!records.length) {
          process.stdout.write('no bounces recorded\n');
          return;
        }
        for (const record of records) {
          const state = record.suspendedAt === null ? 'active' : `SUSPENDED since ${iso(record.suspendedAt)}`;
          process.stdout.write(
            `${record.list}  ${record.address}  score ${record.score.toFixed(2)}  bounces ${record.bouncesTotal}  ${state}  last: ${record.lastReason ?? '-'}\n`,
          );
        }
      } finally {
        db.close();
      }
    });

  bounces
    .command('reset')
    .description("clear a member's bounce score and re-enable delivery to them on that list")
    .argument('<list>', 'the list name (the local part)')
    .argument('<address>', 'the member address')
    .option('--requeue', 'also send the copies held back while delivery was suspended')
    .action(async (list: string, address: string, options: { requeue?: boolean }, command: Command) => {
      const { config } = command.optsWithGlobals<{ config?: string }>();
      const db = await openConfiguredDatabase(config);
      if (!db) return;
      try {
        const result = resetBounces(db, list.toLowerCase().replace(/@.*$/, ''), address, { requeue: options.requeue });
        if (!result.found) {
          process.stderr.write(`embargo: no bounce record for ${address} on ${list}\n`);
          process.exitCode = exitCodes.failure;
          return;
        }
        const held = countSuspendedRows(db, list.toLowerCase(), address);
        process.stdout.write(
          `${result.wasSuspended ? 're-enabled delivery to' : 'cleared the bounce score of'} ${address} on ${list}` +
            (result.requeued ? `; requeued ${result.requeued} held-back cop${result.requeued === 1 ? 'y' : 'ies'}` : '') +
            (held ? `; ${held} cop${held === 1 ? 'y' : 'ies'} held back while suspended (send them with --requeue or \`embargo queue retry\`)` : '') +
            '\n',
        );
      } finally {
        db.close();
      }
    });
}
