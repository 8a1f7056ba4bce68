// `embargo held NAME`, `embargo approve ID`, `embargo reject ID [--reason TEXT]`: the moderators' view and decisions.
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { fail, openConfigured } from '../load.ts';
import { decide, getHeld, listHeld } from '../../lists/moderation.ts';
import type { HeldPost } from '../../lists/moderation.ts';
import { configOptionHelp } from '../config-dir.ts';

function heldJson(post: HeldPost) {
  return {
    id: post.id,
    list: post.list,
    heldAt: new Date(post.heldAt).toISOString(),
    reason: post.reason,
    sender: post.sender,
    size: post.size,
    decision: post.decision,
  };
}

function table(posts: HeldPost[]): string {
  if (posts.length === 0) return 'No held posts.';
  const header = ['ID', 'HELD AT', 'SIZE', 'SENDER', 'REASON'];
  const lines = posts.map((post) => [
    post.id,
    new Date(post.heldAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    String(post.size),
    post.sender ?? '-',
    post.reason,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  return [header, ...lines]
    .map((line) => line.map((cell, column) => (column === line.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ').trimEnd())
    .join('\n');
}

/** Who decided, for the record: the operator's login name on this machine. */
function operator(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

async function decideCommand(id: string, options: { config?: string; reason?: string; json?: boolean }, approve: boolean): Promise<void> {
  const opened = await openConfigured(options.config);
  if (!opened) return;
  try {
    const result = decide(opened.db, { id, approve, by: operator(), reason: options.reason, now: Date.now() });
    if (!result.ok) {
      const held = getHeld(opened.db, id.toUpperCase());
      fail(result.reason === 'not-found' ? `no held post with id ${id}` : `post ${id} is no longer held (decision: ${held?.decision ?? 'unknown'})`);
      return;
    }
    if (options.json) {
      process.stdout.write(JSON.stringify({ ...heldJson(result.post), decision: approve ? 'approved' : 'rejected' }) + '\n');
    } else {
      process.stdout.write(
        approve
          ? `Approved ${result.post.id} on ${result.post.list}; the running daemon distributes it within seconds.\n`
          : `Rejected ${result.post.id} on ${result.post.list}; the running daemon bounces it to the sender${options.reason ? ' with your reason' : ''}.\n`,
      );
    }
  } finally {
    opened.db.close();
  }
}

export function registerModeration(program: Command): void {
  program
    .command('held')
    .description('list the posts of a list that wait for a moderator')
    .argument('<list>', 'list name (the part before @)')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--json', 'one JSON array, for scripts')
    .action(async (listName: string, options: { config?: string; json?: boolean }) => {
      const opened = await openConfigured(options.config);
      if (!opened) return;
      try {
        if (!opened.config.lists.has(listName)) {
          fail(`no list named ${listName}`);
          return;
        }
        const posts = listHeld(opened.db, listName);
        process.stdout.write((options.json ? JSON.stringify(posts.map(heldJson)) : table(posts)) + '\n');
      } finally {
        opened.db.close();
      }
    });

  program
    .command('approve')
    .description('distribute a held post (the running daemon sends it)')
    .argument('<id>', 'held post id, as `embargo held` shows it')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--json', 'print the decision as JSON')
    .action((id: string, options: { config?: string; json?: boolean }) => decideCommand(id, options, true));

  program
    .command('reject')
    .description('refuse a held post; the sender gets a bounce')
    .argument('<id>', 'held post id, as `embargo held` shows it')
    .option('-c, --config <dir>', configOptionHelp)
    .option('-r, --reason <text>', 'reason told to the sender')
    .option('--json', 'print the decision as JSON')
    .action((id: string, options: { config?: string; reason?: string; json?: boolean }) => decideCommand(id, options, false));
}
