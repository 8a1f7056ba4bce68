// `embargo advisories`, `embargo advisory show|postpone|cancel|release ID`, `embargo audit ID`, `embargo resend ID --to ADDRESS`.
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { fail, openConfigured } from '../load.ts';
import { configOptionHelp } from '../config-dir.ts';
import { exitCodes } from '../exit-codes.ts';
import { sendRevision } from '../../advisories/catch-up.ts';
import { openRevision } from '../../advisories/content.ts';
import { applyControl, parseControl } from '../../advisories/control.ts';
import { noticeToPosters } from '../../advisories/notify.ts';
import { releaseDue } from '../../advisories/release.ts';
import { advisoriesWithId, auditOf, deliveryCounts, eventsOf, getRevision, listAdvisories, revisionsOf, type Advisory, type AuditEntry } from '../../advisories/store.ts';
import type { Config } from '../../config/types.ts';
import type { ListKey } from '../../crypto/index.ts';
import { loadListKey } from '../../data-dir.ts';
import { enqueueOutgoing } from '../../queues/outbound.ts';
import type { Db } from '../../store/database.ts';

function operator(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

const iso = (date: Date | null) => (date ? date.toISOString().replace(/\.\d{3}Z$/, 'Z') : null);

/** The one advisory an id names, or null after saying why (unknown, or on several lists without --list). */
function resolveAdvisory(db: Db, advisoryId: string, listOption: string | undefined): Advisory | null {
  const found = advisoriesWithId(db, advisoryId).filter((advisory) => !listOption || advisory.list === listOption.toLowerCase().replace(/@.*$/, ''));
  if (found.length === 1) return found[0];
  if (found.length === 0) fail(`no advisory ${advisoryId}${listOption ? ` on ${listOption}` : ''}`);
  else fail(`${advisoryId} exists on several lists (${found.map((advisory) => advisory.list).join(', ')}): add --list NAME`);
  return null;
}

/** Opens the config and its database, finds the one advisory the id names, runs `work`, and closes the database. */
async function withAdvisory(
  options: { config?: string; list?: string },
  advisoryId: string,
  work: (opened: { config: Config; db: Db; advisory: Advisory }) => Promise<void>,
): Promise<void> {
  const opened = await openConfigured(options.config);
  if (!opened) return;
  try {
    const advisory = resolveAdvisory(opened.db, advisoryId, options.list);
    if (advisory) await work({ ...opened, advisory });
  } finally {
    opened.db.close();
  }
}

function keyLoader(config: Config): (name: string) => Promise<ListKey | undefined> {
  const keys = new Map<string, Promise<ListKey>>();
  return (name) => {
    if (!config.lists.has(name)) return Promise.resolve(undefined);
    let key = keys.get(name);
    if (!key) {
      key = loadListKey(config, name);
      keys.set(name, key);
    }
    return key;
  };
}

/** The newest revision's title; decrypting needs the list key, which the CLI reads from the data directory. */
async function titleOf(db: Db, advisory: Advisory, listKey: ListKey | undefined): Promise<string | null> {
  const revision = getRevision(db, advisory.rowId, advisory.revision);
  if (!revision || !listKey) return null;
  try {
    return (await openRevision(listKey, revision.sealed)).title;
  } catch {
    return null;
  }
}

async function summaryOf(db: Db, advisory: Advisory, listKey: ListKey | undefined) {
  const counts = deliveryCounts(db, advisory.rowId, advisory.revision);
  return {
    id: advisory.advisoryId,
    list: advisory.list,
    revision: advisory.revision,
    title: await titleOf(db, advisory, listKey),
    embargoUntil: iso(advisory.embargoUntil),
    state: advisory.state,
    recipients: counts.recipients,
    delivered: counts.delivered,
    withheld: counts.withheld,
    releasedAt: iso(advisory.releasedAt),
    publishedTo: advisory.publishedTo,
    publishedMessageId: advisory.publishedMessageId,
  };
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  return [header, ...rows].map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ').trimEnd()).join('\n');
}

function auditJson(entry: AuditEntry) {
  return {
    address: entry.address,
    organisation: entry.organisation,
    fingerprint: entry.fingerprint,
    encryptedTo: entry.encryptedTo,
    revision: entry.revision,
    cause: entry.cause,
    state: entry.state,
    queuedAt: iso(entry.queuedAt),
    deliveredAt: iso(entry.deliveredAt),
    detail: entry.detail,
  };
}

function csvCell(value: string | number | null): string {
  const text = value === null ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

async function controlCommand(
  advisoryId: string,
  action: string,
  dateText: string | undefined,
  options: { config?: string; list?: string; json?: boolean },
): Promise<void> {
  const parsed = parseControl(action, dateText);
  if ('error' in parsed) {
    fail(parsed.error, exitCodes.usage);
    return;
  }
  await withAdvisory(options, advisoryId, async ({ config, db, advisory }) => {
    const list = config.lists.get(advisory.list);
    if (!list) {
      fail(`list ${advisory.list} is no longer configured`);
      return;
    }
    const keys = keyLoader(config);
    const listKey = await keys(list.name);
    if (!listKey) {
      fail(`the key of ${list.name} cannot be loaded`);
      return;
    }
    const now = new Date();
    const actor = operator();
    const outcome = applyControl(db, list.name, advisory.advisoryId, parsed, actor, now);
    if (!outcome.ok) {
      fail(outcome.reason);
      return;
    }
    const notices = await noticeToPosters(config, list, listKey, { subject: `${outcome.advisory.advisoryId}: ${parsed.kind === 'postpone' ? 'embargo moved' : parsed.kind === 'cancel' ? 'release cancelled' : 'released by an admin'}`, lines: [outcome.summary, '', `By ${actor} on the server.`] }, now);
    db.transaction(() => {
      for (const notice of notices) enqueueOutgoing(db, { spoolId: null, list: list.name, payload: notice.payload, copies: notice.copies }, now.getTime());
    })();
    // Release now: publish in this process; the daemon's pass would do it within a minute, and either one wins only once.
    if (parsed.kind === 'release') await releaseDue(db, now, { config: () => config, listKeys: keys });
    const after = advisoriesWithId(db, advisory.advisoryId).find((candidate) => candidate.list === advisory.list)!;
    if (options.json) process.stdout.write(JSON.stringify(await summaryOf(db, after, listKey), null, 2) + '\n');
    else process.stdout.write(`${outcome.summary}.\n${after.state === 'released' ? `Published${after.publishedMessageId ? ` as <${after.publishedMessageId}>` : ''}.\n` : ''}`);
  });
}

export function registerAdvisories(program: Command): void {
  program
    .command('advisories')
    .description('list the advisories of announce lists: id, revision, title, embargo end, state, recipients')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--list <name>', 'only this list')
    .option('--json', 'one JSON array')
    .action(async (options: { config?: string; list?: string; json?: boolean }) => {
      const opened = await openConfigured(options.config);
      if (!opened) return;
      const { config, db } = opened;
      try {
        const keys = keyLoader(config);
        const advisories = listAdvisories(db, options.list ? { list: options.list.toLowerCase().replace(/@.*$/, '') } : {});
        const summaries = [];
        for (const advisory of advisories) summaries.push(await summaryOf(db, advisory, await keys(advisory.list).catch(() => undefined)));
        if (options.json) {
          process.stdout.write(JSON.stringify(summaries, null, 2) + '\n');
          return;
        }
        if (summaries.length === 0) {
          process.stdout.write('No advisories.\n');
          return;
        }
        const rows = summaries.map((summary) => [
          summary.id,
          summary.list,
          String(summary.revision),
          summary.state,
          summary.embargoUntil ?? '-',
          `${summary.delivered}/${summary.recipients}${summary.withheld > 0 ? ` (${summary.withheld} withheld)` : ''}`,
          summary.title ?? '(title needs the list key)',
        ]);
        process.stdout.write(table(['ID', 'LIST', 'REV', 'STATE', 'EMBARGO UNTIL', 'DELIVERED', 'TITLE'], rows) + '\n');
      } finally {
        db.close();
      }
    });

  const advisory = program.command('advisory').description('one advisory: show it, move its embargo end, cancel or release it');
  advisory
    .command('show <id>')
    .description('the advisory, its revisions and every change, with who made it')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--list <name>', 'the list, where the id exists on several')
    .option('--json', 'one JSON object')
    .action(async (advisoryId: string, options: { config?: string; list?: string; json?: boolean }) => {
      await withAdvisory(options, advisoryId, async ({ config, db, advisory: found }) => {
        const summary = await summaryOf(db, found, await keyLoader(config)(found.list).catch(() => undefined));
        const revisions = revisionsOf(db, found.rowId).map((revision) => ({
          revision: revision.revision,
          receivedAt: iso(revision.receivedAt),
          spoolId: revision.spoolId,
          embargoUntil: iso(revision.embargoUntil),
          dateProblem: revision.dateProblem,
          signedBy: revision.signedBy,
        }));
        const events = eventsOf(db, found.rowId).map((event) => ({ at: iso(event.at), event: event.event, detail: event.detail, actor: event.actor }));
        if (options.json) {
          process.stdout.write(JSON.stringify({ ...summary, revisions, events }, null, 2) + '\n');
          return;
        }
        const lines = [
          `${summary.id} on ${summary.list}: ${summary.title ?? '(title needs the list key)'}`,
          `state ${summary.state}, embargo until ${summary.embargoUntil ?? '-'}, revision ${summary.revision}`,
          `delivered ${summary.delivered} of ${summary.recipients}, withheld ${summary.withheld}${summary.publishedMessageId ? `; published to ${summary.publishedTo} as <${summary.publishedMessageId}>` : ''}`,
          '',
          'Revisions:',
          ...revisions.map((revision) => `  ${revision.revision}  ${revision.receivedAt}  ${revision.spoolId ?? '-'}  ${revision.embargoUntil ?? (revision.dateProblem ? `not scheduled: ${revision.dateProblem}` : 'no date')}  signed by ${revision.signedBy ?? '-'}`),
          '',
          'Changes:',
          ...events.map((event) => `  ${event.at}  ${event.event}  ${event.actor}${event.detail ? `  ${event.detail}` : ''}`),
        ];
        process.stdout.write(lines.join('\n') + '\n');
      });
    });
  // The three changes share their options; only postpone takes a date.
  const changes = [
    { action: 'postpone', usage: 'postpone <id> <date>', description: 'move the embargo end to DATE (RFC 3339 with an offset, e.g. 2027-01-15T12:00:00Z); the posters are told' },
    { action: 'cancel', usage: 'cancel <id>', description: 'never publish the advisory (until a new revision or command schedules it); the posters are told' },
    { action: 'release', usage: 'release <id>', description: 'publish the newest revision now; the posters are told' },
  ];
  for (const change of changes) {
    advisory
      .command(change.usage)
      .description(change.description)
      .option('-c, --config <dir>', configOptionHelp)
      .option('--list <name>', 'the list, where the id exists on several')
      .option('--json', 'the advisory afterwards, as JSON')
      .action((advisoryId: string, ...rest: unknown[]) => {
        const date = change.action === 'postpone' ? (rest[0] as string) : undefined;
        const options = rest[change.action === 'postpone' ? 1 : 0] as { config?: string; list?: string; json?: boolean };
        return controlCommand(advisoryId, change.action, date, options);
      });
  }
  for (const command of advisory.commands) command.exitOverride();

  program
    .command('audit <id>')
    .description('who was sent which revision of an advisory, encrypted to which key, and whether the relay accepted it')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--list <name>', 'the list, where the id exists on several')
    .option('--json', 'one JSON array')
    .option('--csv', 'CSV with a header line')
    .action(async (advisoryId: string, options: { config?: string; list?: string; json?: boolean; csv?: boolean }) => {
      await withAdvisory(options, advisoryId, async ({ db, advisory: found }) => {
        const entries = auditOf(db, found.rowId).map(auditJson);
        if (options.json) {
          process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
          return;
        }
        const columns = ['revision', 'address', 'organisation', 'fingerprint', 'encryptedTo', 'cause', 'state', 'queuedAt', 'deliveredAt', 'detail'] as const;
        if (options.csv) {
          const lines = [columns.join(','), ...entries.map((entry) => columns.map((column) => csvCell(entry[column])).join(','))];
          process.stdout.write(lines.join('\r\n') + '\r\n');
          return;
        }
        if (entries.length === 0) {
          process.stdout.write(`No copies of ${found.advisoryId} recorded.\n`);
          return;
        }
        const rows = entries.map((entry) => [
          String(entry.revision),
          entry.address,
          entry.organisation ?? '-',
          entry.encryptedTo ?? '-',
          entry.state,
          entry.deliveredAt ?? entry.queuedAt ?? '-',
          entry.detail ?? '',
        ]);
        process.stdout.write(table(['REV', 'ADDRESS', 'ORGANISATION', 'ENCRYPTED TO', 'STATE', 'AT', 'DETAIL'], rows) + '\n');
      });
    });

  program
    .command('resend <id>')
    .description("send the advisory's newest revision again to one member, encrypted to their key (recorded in the audit trail)")
    .requiredOption('--to <address>', 'the member address')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--list <name>', 'the list, where the id exists on several')
    .action(async (advisoryId: string, options: { config?: string; list?: string; to: string }) => {
      await withAdvisory(options, advisoryId, async ({ config, db, advisory: found }) => {
        const list = config.lists.get(found.list);
        const member = list?.members.find((candidate) => candidate.address === options.to.toLowerCase());
        if (!list || !member) {
          fail(`${options.to} is not a member of ${found.list}`);
          return;
        }
        const listKey = await keyLoader(config)(list.name);
        if (!listKey) {
          fail(`the key of ${list.name} cannot be loaded`);
          return;
        }
        const outcome = await sendRevision(db, list, listKey, found, [member], 'resend', new Date());
        if (outcome.queued.length === 1) process.stdout.write(`Revision ${found.revision} of ${found.advisoryId} queued for ${member.address}.\n`);
        else fail(`not sent to ${member.address}: ${outcome.withheld[0]?.reason ?? 'the advisory changed meanwhile; try again'}`);
      });
    });
}
