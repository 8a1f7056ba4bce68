// What a valid config allows but an admin should hear about before it bites: admin mail that would loop, a DKIM key or relay password not in place, advisories that can never be published.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './types.ts';

export interface ConfigWarning {
  file: string;
  /** 1-based line of the setting in the file (1 when it cannot be found). */
  line: number;
  reason: string;
}

function lineOf(file: string, needle: string): number {
  try {
    const index = readFileSync(file, 'utf8').split('\n').findIndex((text) => text.includes(needle));
    return index >= 0 ? index + 1 : 1;
  } catch {
    return 1;
  }
}

export function configWarnings(config: Config): ConfigWarning[] {
  const { server } = config;
  const warnings: ConfigWarning[] = [];
  const domain = server.domain.toLowerCase();
  for (const admin of server.admins) {
    if (admin.toLowerCase().endsWith(`@${domain}`)) {
      warnings.push({
        file: server.file,
        line: lineOf(server.file, admin),
        reason:
          `admin ${admin} is on the lists' own domain and Embargo does no local delivery: through a real MX its notices ` +
          `(shunted and dead mail, key warnings) come back to Embargo and are dropped as a loop; give an address on another domain`,
      });
    }
  }
  const selector = server.dkim?.selector;
  if (selector && !existsSync(join(server.dataPath, 'dkim', `${selector}.key`))) {
    warnings.push({
      file: server.file,
      line: lineOf(server.file, 'dkim'),
      reason: `dkim.selector is ${selector} but ${join(server.dataPath, 'dkim', `${selector}.key`)} does not exist: copies wait in the queue until you run embargo dkim generate --selector ${selector}`,
    });
  }
  const passEnv = server.relay.auth?.passEnv;
  if (passEnv && process.env[passEnv] === undefined) {
    warnings.push({
      file: server.file,
      line: lineOf(server.file, 'passEnv'),
      reason: `relay.auth.passEnv names ${passEnv}, which is not set here (it must be set where the daemon runs)`,
    });
  }
  for (const list of config.lists.values()) {
    // Earlier releases published on an embargo date alone; now only an advisory (an id in the signed content) is published.
    if (list.kind === 'announce' && list.publishTo && !list.advisoryPattern) {
      warnings.push({
        file: list.file,
        line: lineOf(list.file, 'publishTo'),
        reason: `publishTo is set but advisoryPattern is not: nothing posted to ${list.name} is ever published; add e.g. advisoryPattern: 'XSA-[0-9]+' (docs/advisories.md)`,
      });
    }
  }
  return warnings;
}
