// `embargo backup DIR` and `embargo restore DIR`: a consistent copy of the database, keys and config while the daemon runs, and its checked restore.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { backup, restoreConfig, restoreData, verifyBackup } from '../../ops/backup.ts';
import { configDirFrom, configOptionHelp } from '../config-dir.ts';
import { fail, loadConfigOrComplain } from '../load.ts';

const packageJson = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description('copy the database (online, while the daemon runs), the list and DKIM keys, the server secret and the config into DIR, with a manifest of checksums; all files 0600')
    .argument('<dir>', 'a new or empty directory')
    .option('-c, --config <dir>', configOptionHelp)
    .action(async (dir: string, options: { config?: string }) => {
      const config = await loadConfigOrComplain(options.config);
      if (!config) return;
      const outcome = await backup(config, resolve(dir), packageJson.version);
      if (!outcome.ok) return fail(outcome.reason);
      const bytes = outcome.manifest.files.reduce((sum, file) => sum + file.bytes, 0);
      process.stdout.write(`${resolve(dir)}: ${outcome.manifest.files.length} files, ${bytes} bytes, manifest.json written\n`);
    });
}

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .description("check a backup's checksums, then restore it into the config's data directory, which must be empty (and the config too, when the config directory has no server.yaml)")
    .argument('<dir>', 'a directory written by embargo backup')
    .option('-c, --config <dir>', configOptionHelp)
    .action(async (dir: string, options: { config?: string }) => {
      const backupDir = resolve(dir);
      const checked = verifyBackup(backupDir);
      if (!checked.ok) return fail(`not restored: ${checked.reason}`);
      const configRestored = restoreConfig(backupDir, checked.manifest, configDirFrom(options.config));
      const config = await loadConfigOrComplain(options.config);
      if (!config) return;
      const outcome = restoreData(config, backupDir, checked.manifest);
      if (!outcome.ok) return fail(`not restored: ${outcome.reason}`);
      if (configRestored) process.stdout.write(`config restored into ${config.server.configDir}\n`);
      process.stdout.write(`${outcome.restored.length} files restored into ${config.server.dataPath}, checksums verified; start the daemon\n`);
    });
}
