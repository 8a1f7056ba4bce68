// The embargo command line: a table of subcommands, each loaded (with its dependencies) only when it runs.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { exitCodes } from './exit-codes.ts';

type Register = (program: Command) => void;

/** One top-level command: its name and one-line summary for `embargo --help`, and how to load the module that defines it. */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Register>;
}

// ─── Subcommands, one entry each ──────────────────────────────────────────────────────────────────
// `load` imports the module only when its command runs, so `embargo --help` never loads openpgp,
// smtp-server or the daemon. The module's register function gives the full options and help.
export const commands: CommandEntry[] = [
  { name: 'serve', summary: 'run the daemon: SMTP intake, list processing, delivery and the web archive', load: async () => (await import('./commands/serve.ts')).registerServe },
  { name: 'check', summary: 'validate the config directory; exit 1 and print file:line: reason for each error', load: async () => (await import('./commands/check.ts')).registerCheck },
  { name: 'list-key', summary: "print a list's public key, or import a replacement key pair", load: async () => (await import('./commands/list-key.ts')).registerListKey },
  { name: 'queue', summary: 'show the outbound queue; retry or purge rows', load: async () => (await import('./commands/queue.ts')).registerQueue },
  { name: 'bounces', summary: "show members' bounce scores and suspensions; reset one", load: async () => (await import('./commands/bounces.ts')).registerBounces },
  { name: 'archive', summary: 'export a list archive to mbox; list embargoed advisories waiting for release', load: async () => (await import('./commands/archive.ts')).registerArchive },
  { name: 'held', summary: 'list the posts of a list that wait for a moderator', load: async () => (await import('./commands/moderation.ts')).registerModeration },
  { name: 'approve', summary: 'distribute a held post (the running daemon sends it)', load: async () => (await import('./commands/moderation.ts')).registerModeration },
  { name: 'reject', summary: 'refuse a held post; the sender gets a bounce', load: async () => (await import('./commands/moderation.ts')).registerModeration },
  { name: 'members', summary: "show a list's members, their keys and key problems, and bounce state", load: async () => (await import('./commands/members.ts')).registerMembers },
  { name: 'keys', summary: "check members' OpenPGP keys (exit 1 if one cannot be encrypted to)", load: async () => (await import('./commands/keys.ts')).registerKeys },
  { name: 'advisories', summary: 'list the advisories of announce lists: id, revision, title, embargo end, state, recipients', load: async () => (await import('./commands/advisories.ts')).registerAdvisories },
  { name: 'advisory', summary: 'one advisory: show, postpone, cancel, release, audit, resend', load: async () => (await import('./commands/advisories.ts')).registerAdvisories },
  { name: 'audit', summary: 'who was sent which revision of an advisory, encrypted to which key, and whether the relay accepted it', load: async () => (await import('./commands/advisories.ts')).registerAdvisories },
  { name: 'resend', summary: "send an advisory's newest revision again to one member, encrypted to their key", load: async () => (await import('./commands/advisories.ts')).registerAdvisories },
  { name: 'backup', summary: 'copy the database, keys and config into DIR while the daemon runs, with a manifest of checksums', load: async () => (await import('./commands/backup.ts')).registerBackup },
  { name: 'restore', summary: 'verify a backup and restore it into an empty data directory', load: async () => (await import('./commands/backup.ts')).registerRestore },
  { name: 'dkim', summary: "create the DKIM key for the lists' domain and print its DNS record", load: async () => (await import('./commands/dkim.ts')).registerDkim },
  { name: 'sink', summary: 'DEVELOPMENT ONLY: an SMTP relay on loopback that stores every message as a .eml file', load: async () => (await import('./commands/sink.ts')).registerSink },
];
// ────────────────────────────────────────────────────────────────────────────────────────────────────

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The command the arguments name (`embargo NAME …` or `embargo help NAME`), if it is in the table. */
function requested(args: string[]): CommandEntry | undefined {
  const [first, second] = args;
  const name = first === 'help' ? second : first;
  return commands.find((entry) => entry.name === name);
}

/** The program with the command that args name fully defined, or (for --help and usage errors) every command as a one-line stub. */
export async function buildProgram(args: string[]): Promise<Command> {
  const program = new Command();
  program
    .name('embargo')
    .description('Embargo: a secure mailing-list server for security-response teams')
    .version(packageJson.version)
    .showHelpAfterError()
    .exitOverride();

  const wanted = requested(args);
  if (wanted) {
    (await wanted.load())(program);
  } else {
    for (const entry of commands) program.command(entry.name).description(entry.summary);
  }
  // commander copies exitOverride into commands created after it; this also covers ones attached with addCommand().
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI; argv as in process.argv (node, script, ...arguments). */
export async function main(argv: string[]): Promise<void> {
  try {
    const program = await buildProgram(argv.slice(2));
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors were already printed by commander.
      process.exitCode = error.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
      return;
    }
    process.stderr.write(`embargo: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = exitCodes.failure;
  }
}
