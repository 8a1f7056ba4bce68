// `embargo list-key NAME`: prints a list's armored public key, generating the key pair first if it has none.
import type { Command } from 'commander';
import { formatConfigErrors, loadConfig } from '../../config/loader.ts';
import { loadListKey } from '../../daemon.ts';
import { configDirFrom, configOptionHelp } from '../config-dir.ts';
import { exitCodes } from '../exit-codes.ts';

export function registerListKey(program: Command): void {
  program
    .command('list-key')
    .description("print a list's armored OpenPGP public key (generated into the data directory if absent)")
    .argument('<name>', 'the list name (the local part, e.g. xen-security-issues)')
    .option('-c, --config <dir>', configOptionHelp)
    .action(async (name: string, options: { config?: string }) => {
      const loaded = await loadConfig(configDirFrom(options.config));
      if (!loaded.ok) {
        process.stderr.write(formatConfigErrors(loaded.errors) + '\n');
        process.exitCode = exitCodes.invalidConfig;
        return;
      }
      const listName = name.toLowerCase().replace(/@.*$/, '');
      if (!loaded.config.lists.has(listName)) {
        const known = [...loaded.config.lists.keys()].join(', ') || 'none';
        process.stderr.write(`embargo: no list named ${name} (lists: ${known})\n`);
        process.exitCode = exitCodes.failure;
        return;
      }
      const key = await loadListKey(loaded.config, listName);
      process.stdout.write(key.armoredPublicKey.endsWith('\n') ? key.armoredPublicKey : key.armoredPublicKey + '\n');
    });
}
