// `embargo list-key NAME`: prints a list's armored public key, generating the key pair first if it has none; `list-key import` replaces it, `refresh-signatures` re-signs it.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/types.ts';
import type { ConfigWarning } from '../../config/warnings.ts';
import { listNameOrComplain, loadConfigOrComplain } from '../load.ts';
import { importListKey, listKeyFile, refreshListKeySignatures, sha1SelfSignatures } from '../../crypto/index.ts';
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
        const weak = await sha1SelfSignatures(key.armoredPublicKey);
        if (weak.length > 0) process.stderr.write(`embargo: warning: ${sha1Reason(listName, weak)}\n`);
        process.stdout.write(`${key.fingerprint}\n`);
      } catch (error) {
        process.stderr.write(`embargo: key not imported: ${errorMessage(error)}\n`);
        process.exitCode = exitCodes.failure;
      }
    });

  command
    .command('refresh-signatures')
    .description("re-sign the list key's user IDs and subkey bindings with SHA-512, keeping the same key (the old file is kept beside it; restart the daemon)")
    .argument('<name>', 'the list name')
    .option('-c, --config <dir>', configOptionHelp)
    .action(async (name: string, options: { config?: string }, self: Command) => {
      const config = await loadConfigOrComplain(options.config ?? (self.parent?.opts() as { config?: string } | undefined)?.config);
      if (!config) return;
      const listName = listNameOrComplain(config, name);
      if (!listName) return;
      try {
        const result = await refreshListKeySignatures({ dataDir: config.server.dataPath, listName, passphrase: keyPassphrase(config.server) });
        const what = result.replacedSha1.length > 0 ? `replaced the SHA-1 signatures on ${result.replacedSha1.join(', ')}` : 'no SHA-1 signatures were left';
        process.stderr.write(`embargo: key ${result.fingerprint} of ${listName} re-signed with SHA-512 (${what}); restart the daemon, and send members the refreshed public key (embargo list-key ${listName})\n`);
        process.stdout.write(`${result.fingerprint}\n`);
      } catch (error) {
        process.stderr.write(`embargo: key not re-signed: ${errorMessage(error)}\n`);
        process.exitCode = exitCodes.failure;
      }
    });
}

/** Why a list key with SHA-1 self-signatures needs refreshing, for the import warning and `embargo check`. */
function sha1Reason(listName: string, weak: string[]): string {
  return `the key of ${listName} is self-signed with SHA-1 (${weak.join(', ')}): members using Sequoia (sq) cannot verify any signature of the list. Run: embargo list-key refresh-signatures ${listName}`;
}

/** `embargo check`: a warning per list whose key (already on this server) has SHA-1 self-signatures. */
export async function listKeyWarnings(config: Config): Promise<ConfigWarning[]> {
  const warnings: ConfigWarning[] = [];
  for (const list of config.lists.values()) {
    const file = join(config.server.dataPath, 'keys', `${list.name}.public.asc`);
    const armored = await readFile(file, 'utf8').catch(() => null);
    if (armored === null) continue;
    const weak = await sha1SelfSignatures(armored).catch(() => []);
    if (weak.length > 0) warnings.push({ file, line: 1, reason: sha1Reason(list.name, weak) });
  }
  return warnings;
}
