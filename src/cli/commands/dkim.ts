// `embargo dkim generate`: creates the list domain's DKIM key in DATADIR/dkim/ and prints the DNS record to publish.
import type { Command } from 'commander';
import { dkimSelectorPattern } from '../../config/schema.ts';
import { generateDkimKey } from '../../smtp/dkim.ts';
import { configOptionHelp } from '../config-dir.ts';
import { fail, loadConfigOrComplain } from '../load.ts';

export function registerDkim(program: Command): void {
  const dkim = program.command('dkim').description('DKIM signing of outgoing mail');
  dkim
    .command('generate')
    .description('create an RSA-2048 key in DATADIR/dkim/SELECTOR.key (mode 0600) and print its DNS TXT record; never replaces a key')
    .option('--selector <name>', 'the DKIM selector (default: dkim.selector from server.yaml, else "embargo")')
    .option('-c, --config <dir>', configOptionHelp)
    .action(async (options: { selector?: string; config?: string }) => {
      const config = await loadConfigOrComplain(options.config);
      if (!config) return;
      const selector = options.selector ?? config.server.dkim?.selector ?? 'embargo';
      if (!dkimSelectorPattern.test(selector)) return fail(`selector ${selector} is not a DNS label (letters, digits, hyphens)`);
      const outcome = generateDkimKey(config, selector);
      if (!outcome.ok) return fail(outcome.reason);
      process.stderr.write(`embargo: wrote ${outcome.file}; publish this record, then set dkim: { selector: ${selector} } in server.yaml\n`);
      process.stdout.write(outcome.record + '\n');
    });
}
