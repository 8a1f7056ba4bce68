// Where the CLI finds the config directory: --config, else $EMBARGO_CONFIG, else the package's own config/.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageConfigDir = fileURLToPath(new URL('../../config', import.meta.url));

export function configDirFrom(option: string | undefined): string {
  return resolve(option ?? process.env.EMBARGO_CONFIG ?? packageConfigDir);
}

export const configOptionHelp = 'config directory (default: $EMBARGO_CONFIG, else the config/ shipped with Embargo)';
