// `embargo check`: validates the config directory and prints each error as file:line: reason.
import type { Command } from 'commander';
import { formatConfigErrors, loadConfig } from '../../config/loader.ts';
import { configWarnings } from '../../config/warnings.ts';
import { configDirFrom, configOptionHelp } from '../config-dir.ts';
import { exitCodes } from '../exit-codes.ts';
import { listKeyWarnings } from './list-key.ts';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('validate the config directory; exit 1 and print file:line: reason for each error')
    .option('-c, --config <dir>', configOptionHelp)
    .option('--json', 'print JSON: { ok, errors: [{ file, line, column, reason }] } or { ok, warnings, domain, lists }')
    .action(async (options: { config?: string; json?: boolean }) => {
      const configDir = configDirFrom(options.config);
      const loaded = await loadConfig(configDir);
      if (!loaded.ok) {
        if (options.json) process.stdout.write(JSON.stringify({ ok: false, configDir, errors: loaded.errors }, null, 2) + '\n');
        else process.stderr.write(formatConfigErrors(loaded.errors) + '\n');
        process.exitCode = exitCodes.invalidConfig;
        return;
      }
      const { server, lists } = loaded.config;
      // A list key self-signed with SHA-1 works here, but members using Sequoia could verify nothing the list signs.
      const warnings = [...configWarnings(loaded.config), ...(await listKeyWarnings(loaded.config))];
      if (options.json) {
        const summary = {
          ok: true,
          warnings,
          configDir,
          domain: server.domain,
          smtp: `${server.smtp.host}:${server.smtp.port}`,
          dataDir: server.dataPath,
          lists: [...lists.values()].map((list) => ({ address: list.address, kind: list.kind, archive: list.archive, members: list.members.length })),
        };
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        return;
      }
      const lines = [`${configDir}: OK`, `  domain ${server.domain}, smtp ${server.smtp.host}:${server.smtp.port}, data ${server.dataPath}`];
      for (const list of lists.values()) {
        lines.push(`  ${list.address} (${list.kind}, archive ${list.archive}, ${list.members.length} member${list.members.length === 1 ? '' : 's'})`);
      }
      process.stdout.write(lines.join('\n') + '\n');
      // Warnings do not fail the check (exit 0): the config works, but not as an admin would expect.
      for (const warning of warnings) process.stderr.write(`${warning.file}:${warning.line}: warning: ${warning.reason}\n`);
    });
}
