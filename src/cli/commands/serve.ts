// `embargo serve`: runs the daemon until SIGTERM or SIGINT, then stops gracefully.
import type { Command } from 'commander';
import { formatConfigErrors } from '../../config/loader.ts';
import { ConfigInvalidError, startDaemon } from '../../daemon.ts';
import { configDirFrom, configOptionHelp } from '../config-dir.ts';
import { exitCodes } from '../exit-codes.ts';
import { errorMessage } from '../../util/errors.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the daemon: SMTP intake, list processing, delivery and the web archive')
    .option('-c, --config <dir>', configOptionHelp)
    .action(async (options: { config?: string }) => {
      let daemon;
      try {
        daemon = await startDaemon({ configDir: configDirFrom(options.config) });
      } catch (error) {
        if (error instanceof ConfigInvalidError) {
          process.stderr.write(formatConfigErrors(error.errors) + '\n');
          process.exit(exitCodes.invalidConfig);
        }
        process.stderr.write(`embargo: cannot start: ${errorMessage(error)}\n`);
        process.exit(exitCodes.failure);
      }
      const running = daemon;
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        // A second signal means the operator does not want to wait for in-flight transactions.
        if (signals > 1) process.exit(exitCodes.failure);
        running.stop().then(
          () => process.exit(exitCodes.ok),
          (error: unknown) => {
            process.stderr.write(`embargo: error while stopping on ${signal}: ${String(error)}\n`);
            process.exit(exitCodes.failure);
          },
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      // SIGHUP (systemctl reload): re-read the STARTTLS certificate, e.g. from a renewal hook.
      process.on('SIGHUP', () => running.reloadTls());
      // The daemon stops itself when it can no longer take mail; exit non-zero so a supervisor restarts it.
      void running.failed.then(async () => {
        await running.stop();
        process.exit(exitCodes.failure);
      });
    });
}
