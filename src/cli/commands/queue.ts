// `embargo queue`: shows the intake backlog and the outbound queue by state with dead letters and their relay replies; `retry` requeues, `purge` deletes.
import type { Command } from 'commander';
import { fail, openConfigured } from '../load.ts';
import type { Db } from '../../store/database.ts';
import {
  listOutbound,
  outboundStates,
  purgeOutbound,
  queueCounts,
  retryAllOutbound,
  retryOutbound,
  type OutboundRow,
  type OutboundState,
} from '../../queues/outbound.ts';
import { createSpool } from '../../queues/spool.ts';
import type { ClassBacklog } from '../../queues/spool.ts';
import { configOptionHelp } from '../config-dir.ts';
import { exitCodes } from '../exit-codes.ts';

interface QueueOptions {
  config?: string;
  json?: boolean;
  includeSent?: boolean;
  state?: string[];
  limit?: string;
}

/** Opens the daemon's database (safe while it runs: WAL readers do not block it, writes wait for it). */
export async function openConfiguredDatabase(configOption: string | undefined): Promise<Db | null> {
  return (await openConfigured(configOption))?.db ?? null;
}

const isoSeconds = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

function rowJson(row: OutboundRow) {
  const waiting = row.state === 'queued' || row.state === 'deferred';
  return {
    id: row.id,
    list: row.list,
    recipient: row.recipient,
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: waiting ? new Date(row.nextAttemptAt).toISOString() : null,
    createdAt: new Date(row.createdAt).toISOString(),
    lastAttemptAt: row.lastAttemptAt === null ? null : new Date(row.lastAttemptAt).toISOString(),
    lastReply: row.lastReply,
    spoolId: row.spoolId,
    messageId: row.messageId,
  };
}

function table(rows: OutboundRow[]): string {
  const header = ['ID', 'STATE', 'TRIES', 'NEXT ATTEMPT', 'LIST', 'RECIPIENT', 'LAST REPLY'];
  const lines = rows.map((row) => [
    String(row.id),
    row.state,
    String(row.attempts),
    row.state === 'queued' || row.state === 'deferred' ? isoSeconds(row.nextAttemptAt) : '-',
    row.list,
    row.recipient,
    (row.lastReply ?? '').replace(/\s+/g, ' ').slice(0, 100),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  return [header, ...lines]
    .map((line) => line.map((cell, column) => (column === line.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ').trimEnd())
    .join('\n');
}

/** One line: unprocessed spool messages by source class, with the age of each class's oldest. */
function intakeLine(backlog: ClassBacklog[], now: number): string {
  const total = backlog.reduce((sum, entry) => sum + entry.messages, 0);
  const parts = backlog.map((entry) =>
    entry.oldestReceivedAt === null ? `${entry.sourceClass}: 0` : `${entry.sourceClass}: ${entry.messages} (oldest ${Math.round((now - entry.oldestReceivedAt) / 1000)} s)`,
  );
  return `intake backlog (received, not yet processed): ${total}  ${parts.join('  ')}`;
}

function parseStates(values: string[] | undefined, includeSent: boolean | undefined): readonly OutboundState[] {
  if (values?.length) return values as OutboundState[];
  // Delivered rows can be many and say little; they are shown on request.
  return includeSent ? outboundStates : outboundStates.filter((state) => state !== 'sent');
}

export function registerQueue(program: Command): void {
  const queue = program
    .command('queue')
    .description('show the intake backlog by source class, then the outbound queue: counts by state, waiting rows and dead letters with the relay’s last reply')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--json', 'print JSON: { counts, rows }')
    // Not --all: an option of `queue` would swallow the same option of its subcommands (`queue retry --all`).
    .option('--include-sent', 'also list delivered (sent) rows')
    .option('--state <state...>', `only rows in these states (${outboundStates.join(', ')})`)
    .option('--limit <n>', 'list at most this many rows', '200')
    .action(async (options: QueueOptions) => {
      const states = parseStates(options.state, options.includeSent);
      const unknown = states.filter((state) => !outboundStates.includes(state));
      if (unknown.length) return fail(`unknown state ${unknown.join(', ')} (states: ${outboundStates.join(', ')})`, exitCodes.usage);
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 0) return fail('--limit must be a whole number', exitCodes.usage);
      const db = await openConfiguredDatabase(options.config);
      if (!db) return;
      try {
        const intake = createSpool(db).backlogByClass();
        const counts = queueCounts(db);
        const rows = listOutbound(db, { states, limit });
        if (options.json) {
          const backlog = intake.map((entry) => ({ ...entry, oldestReceivedAt: entry.oldestReceivedAt === null ? null : new Date(entry.oldestReceivedAt).toISOString() }));
          process.stdout.write(JSON.stringify({ intake: backlog, counts, rows: rows.map(rowJson) }, null, 2) + '\n');
          return;
        }
        process.stdout.write(intakeLine(intake, Date.now()) + '\n');
        process.stdout.write(outboundStates.map((state) => `${state}: ${counts[state]}`).join('  ') + '\n');
        if (rows.length) process.stdout.write('\n' + table(rows) + '\n');
        const shown = states.reduce((sum, state) => sum + counts[state], 0);
        if (shown > rows.length) process.stdout.write(`(${shown - rows.length} more; use --limit)\n`);
      } finally {
        db.close();
      }
    });

  queue
    .command('retry')
    .description('requeue a row (failed, expired, suspended or deferred) to be sent now, or every such row with --all')
    .argument('[id]', 'the queue row id (see `embargo queue`)')
    .option('--all', 'requeue every failed, expired, suspended and deferred row')
    .action(async (id: string | undefined, options: { all?: boolean }, command: Command) => {
      const { config } = command.optsWithGlobals<{ config?: string }>();
      if (!options.all && id === undefined) return fail('give a row id or --all', exitCodes.usage);
      if (options.all && id !== undefined) return fail('give a row id or --all, not both', exitCodes.usage);
      const rowId = id === undefined ? null : Number(id);
      if (rowId !== null && (!Number.isSafeInteger(rowId) || rowId <= 0)) return fail(`not a row id: ${id}`, exitCodes.usage);
      const db = await openConfiguredDatabase(config);
      if (!db) return;
      try {
        if (rowId === null) {
          const count = retryAllOutbound(db);
          process.stdout.write(`requeued ${count} row${count === 1 ? '' : 's'}; a running daemon sends them at its next sweep\n`);
          return;
        }
        const outcome = retryOutbound(db, rowId);
        const messages: Record<typeof outcome, string> = {
          requeued: `requeued row ${rowId}; a running daemon sends it at its next sweep`,
          'not-found': `no queue row ${rowId}`,
          'already-sent': `row ${rowId} was already delivered`,
          'in-flight': `row ${rowId} is being sent right now`,
          'already-queued': `row ${rowId} is already queued and due`,
        };
        if (outcome === 'requeued' || outcome === 'already-queued') process.stdout.write(messages[outcome] + '\n');
        else fail(messages[outcome]);
      } finally {
        db.close();
      }
    });

  queue
    .command('purge')
    .description('delete dead letters (failed, expired, suspended) and delivered rows; needs --yes-really')
    .option('--yes-really', 'confirm: the deleted messages cannot be sent any more')
    .option('--everything', 'also delete rows still waiting to be sent (queued, deferred)')
    .action(async (options: { yesReally?: boolean; everything?: boolean }, command: Command) => {
      const { config } = command.optsWithGlobals<{ config?: string }>();
      if (!options.yesReally) {
        return fail('purge deletes queue rows for good; run it again with --yes-really to confirm');
      }
      const db = await openConfiguredDatabase(config);
      if (!db) return;
      try {
        const result = purgeOutbound(db, { everything: options.everything });
        process.stdout.write(`deleted ${result.rows} row${result.rows === 1 ? '' : 's'} and ${result.payloads} shared payload${result.payloads === 1 ? '' : 's'}\n`);
      } finally {
        db.close();
      }
    });
}
