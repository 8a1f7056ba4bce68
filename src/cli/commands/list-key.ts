// `embargo list-key NAME`: prints a list's armored public key, generating the key pair first if it has none; `list-key import` replaces it.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { listNameOrComplain, loadConfigOrComplain } from '../load.ts';
import { importListKey, listKeyFile } from '../../crypto/index.ts';
import { keyPassphrase, loadListKey } from '../../data-dir.ts';
import { configOptionHelp } from '../config-dir.ts';
import { exitCodes } from '../exit-codes.ts';
import { errorMessage } from '../../util/errors.ts';

export function registerListKey(program: Command): void {
  const command = program
    .command('list-key')
    .description("print a list's armored OpenPGP public key (generated into the data directory if absent)")
    .argument('<name>', 'the list name (the local part, e.g. xen-security-issues)')
    .option('-c, --config <dir>', configOptionHelp)
    .action(async (name: string, options: { config?: string }) => {
      const config = await loadConfigOrComplain(options.config);
      if (!config) return;
      const listName = listNameOrComplain(config, name);
      if (!listName) return;
      const key = await loadListKey(config, listName);
      process.stdout.write(key.armoredPublicKey.endsWith('\n') ? key.armoredPublicKey : key.armoredPublicKey + '\n');
    });

  // Key rotation: the new secret key is unlocked first (a wrong passphrase or a public key changes nothing),
  // the old file is kept beside it as NAME.secret.asc.replaced-TIME, and the daemon uses the new key after a restart.
  command
    .command('import')
    .description("replace a list's key pair with an armored OpenPGP secret key from FILE (the old key file is kept beside it; restart the daemon)")
    .argument('<name>', 'the list name')
    .argument('<file>', 'the armored secret key (protected with the passphrase server.yaml names, if it names one)')
    .option('-c, --config <dir>', configOptionHelp)
    .action(async (name: string, file: string, options: { config?: string }, self: Command) => {
      // `--config` after the subcommand is still taken by list-key itself (commander hands options up): read both.
      const config = await loadConfigOrComplain(options.config ?? (self.parent?.opts() as { config?: string } | undefined)?.config);
      if (!config) return;
      const listName = listNameOrComplain(config, name);
      if (!listName) return;
      try {
        const key = await importListKey({
          dataDir: config.server.dataPath,
          listName,
          armoredSecretKey: readFileSync(file, 'utf8'),
          passphrase: keyPassphrase(config.server),
          replace: true,
        });
        process.stderr.write(`embargo: ${listKeyFile(config.server.dataPath, listName)} now holds key ${key.fingerprint}; restart the daemon to use it, and announce the new key to the members\n`);
        process.stdout.write(`${key.fingerprint}\n`);
      } catch (error) {
        process.stderr.write(`embargo: key not imported: ${errorMessage(error)}\n`);
        process.exitCode = exitCodes.failure;
      }
    });
}
