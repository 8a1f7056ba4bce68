// The embargo command line: parses argv with commander and runs one subcommand.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerArchive } from './commands/archive.ts';
import { registerCheck } from './commands/check.ts';
import { registerListKey } from './commands/list-key.ts';
import { registerQueue } from './commands/queue.ts';
import { registerBounces } from './commands/bounces.ts';
import { registerServe } from './commands/serve.ts';
import { registerModeration } from './commands/moderation.ts';
import { registerMembers } from './commands/members.ts';
import { registerKeys } from './commands/keys.ts';
import { registerSink } from './commands/sink.ts';
import { registerAdvisories } from './commands/advisories.ts';
import { exitCodes } from './exit-codes.ts';

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('embargo')
    .description('Embargo: a secure mailing-list server for security-response teams')
    .version(packageJson.version)
    .showHelpAfterError()
    .exitOverride();

  // Subcommands, one line each (each module in ./commands/ exports a register function).
  registerServe(program);
  registerCheck(program);
  registerListKey(program);
  registerQueue(program);
  registerBounces(program);
  registerArchive(program);
  registerModeration(program);
  registerMembers(program);
  registerKeys(program);
  registerSink(program);
  registerAdvisories(program);

  // commander copies exitOverride into commands created after it; this also covers ones attached with addCommand().
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI; argv as in process.argv (node, script, ...arguments). */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
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
