// `embargo archive export NAME [--since DATE] --mbox FILE` and `embargo archive pending`: admin access to the archive on the server.
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import { listNameOrComplain, loadConfigOrComplain } from '../load.ts';
import type { Config } from '../../config/types.ts';
import { archivedMessages } from '../../archive/queries.ts';
import { mboxRecord } from '../../archive/mbox.ts';
import { parseRfc3339 } from '../../archive/embargo-date.ts';
import { listAdvisories } from '../../advisories/store.ts';
import { parseForArchive, firstAddress } from '../../archive/store.ts';
import { databaseFile, loadListKey } from '../../data-dir.ts';
import { migrations } from '../../schema.ts';
import { openDatabase } from '../../store/database.ts';
import { configOptionHelp } from '../config-dir.ts';
import { exitCodes } from '../exit-codes.ts';

/** YYYY-MM-DD (midnight UTC) or a full RFC 3339 time. */
export function parseSince(text: string): Date | null {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    const date = new Date(`${text}T00:00:00Z`);
    return Number.isNaN(date.getTime()) ? null : date;
  }
  return parseRfc3339(text);
}


/** Decrypts a list's archive into an mbox file (mode 0600: it holds plaintext). Returns the number of messages. */
export async function exportArchive(options: { config: Config; listName: string; since: Date | null; mboxFile: string }): Promise<number> {
  const list = options.config.lists.get(options.listName);
  if (!list) throw new Error(`no list named ${options.listName}`);
  const listKey = await loadListKey(options.config, list.name);
  const db = openDatabase(databaseFile(options.config), migrations);
  // 'wx': never overwrite an existing file, and never widen the mode of one.
  const fd = openSync(options.mboxFile, 'wx', 0o600);
  let count = 0;
  try {
    for await (const { receivedAt, message } of archivedMessages(db, list, listKey, options.since)) {
      const parsed = await parseForArchive(message);
      const date = parsed.headers.has('date') && parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date : receivedAt;
      writeSync(fd, mboxRecord(message, firstAddress(parsed.from).address, date));
      count++;
    }
  } finally {
    closeSync(fd);
    db.close();
  }
  return count;
}

export function registerArchive(program: Command): void {
  const archive = program.command('archive').description('read the archive on the server (private lists are decrypted with the list key)');

  archive
    .command('export')
    .description('write a list\'s archived messages, decrypted, to an mbox file (created with mode 0600)')
    .argument('<name>', 'the list name (the local part, e.g. xen-security-issues)')
    .requiredOption('--mbox <file>', 'the mbox file to create (must not exist)')
    .option('--since <date>', 'only messages received at or after this date (YYYY-MM-DD or RFC 3339)')
    .option('-c, --config <dir>', configOptionHelp)
    .action(async (name: string, options: { mbox: string; since?: string; config?: string }) => {
      const config = await loadConfigOrComplain(options.config);
      if (!config) return;
      const listName = listNameOrComplain(config, name);
      if (!listName) return;
      const since = options.since === undefined ? null : parseSince(options.since);
      if (options.since !== undefined && !since) {
        process.stderr.write(`embargo: --since ${options.since} is not a date (use YYYY-MM-DD or an RFC 3339 time)\n`);
        process.exitCode = exitCodes.usage;
        return;
      }
      try {
        const count = await exportArchive({ config, listName, since, mboxFile: options.mbox });
        process.stderr.write(`embargo: wrote ${count} message${count === 1 ? '' : 's'} of ${listName} to ${options.mbox}\n`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
          process.stderr.write(`embargo: ${options.mbox} exists; choose a new file name\n`);
          process.exitCode = exitCodes.failure;
          return;
        }
        throw error;
      }
    });

  archive
    .command('pending')
    .description('list embargoed advisories waiting for release (ids and times only)')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--json', 'one JSON array of { id, list, releaseAt, releaseTo }')
    .action(async (options: { config?: string; json?: boolean }) => {
      const config = await loadConfigOrComplain(options.config);
      if (!config) return;
      const db = openDatabase(databaseFile(config), migrations);
      try {
        // Kept for scripts written against earlier releases; `embargo advisories` shows more.
        const pending = listAdvisories(db, { states: ['embargoed'] }).map((advisory) => ({
          id: advisory.advisoryId,
          list: advisory.list,
          releaseAt: advisory.embargoUntil ?? new Date(0),
          releaseTo: config.lists.get(advisory.list)?.publishTo ?? null,
        }));
        if (options.json) {
          const json = pending.map((entry) => ({ id: entry.id, list: entry.list, releaseAt: entry.releaseAt.toISOString(), releaseTo: entry.releaseTo }));
          process.stdout.write(JSON.stringify(json, null, 2) + '\n');
          return;
        }
        const lines = pending.map((entry) => `${entry.id}\t${entry.list}\t${entry.releaseAt.toISOString()}\t${entry.releaseTo ?? '-'}`);
        process.stdout.write(lines.length > 0 ? `${lines.join('\n')}\n` : 'no embargoed advisories pending\n');
      } finally {
        db.close();
      }
    });

  for (const command of archive.commands) command.exitOverride();
}
