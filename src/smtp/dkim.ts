// DKIM for outgoing copies: the list domain's RSA key in DATADIR/dkim/SELECTOR.key, its DNS record, and nodemailer's signing options.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/types.ts';

/** What nodemailer's `dkim` transport option takes. */
export interface DkimSigning {
  domainName: string;
  keySelector: string;
  privateKey: string;
  /** The header fields a receiver checks; the body is covered by the body hash. */
  headerFieldNames: string;
}

// From is rewritten to the list domain for DMARC, so it, and what a reader sees and threads by, is signed.
const signedFields = 'From:Sender:Reply-To:To:Cc:Subject:Date:Message-ID:In-Reply-To:References:MIME-Version:Content-Type:Content-Transfer-Encoding:List-Id:List-Post:List-Unsubscribe';

export const dkimDirectory = (dataPath: string): string => join(dataPath, 'dkim');
export const dkimKeyFile = (dataPath: string, selector: string): string => join(dkimDirectory(dataPath), `${selector}.key`);

/** The zone-file line for the key: `SELECTOR._domainkey.DOMAIN. IN TXT ( "…" "…" )`, split into strings of at most 255 characters as DNS requires. */
export function dkimDnsRecord(privateKeyPem: string, selector: string, domain: string): string {
  const publicKey = createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' }).toString('base64');
  const value = `v=DKIM1; k=rsa; p=${publicKey}`;
  const strings = value.match(/.{1,250}/g) ?? [value];
  return `${selector}._domainkey.${domain}. IN TXT ( ${strings.map((part) => `"${part}"`).join(' ')} )`;
}

export type GenerateOutcome = { ok: true; file: string; record: string } | { ok: false; reason: string };

/** Creates an RSA-2048 key for `selector` (mode 0600 in a 0700 directory); an existing key is never replaced. */
export function generateDkimKey(config: Config, selector: string): GenerateOutcome {
  const file = dkimKeyFile(config.server.dataPath, selector);
  if (existsSync(file)) return { ok: false, reason: `${file} exists; choose a new selector to rotate keys (the old record must stay in DNS until mail signed with it is delivered)` };
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  mkdirSync(dkimDirectory(config.server.dataPath), { recursive: true, mode: 0o700 });
  chmodSync(dkimDirectory(config.server.dataPath), 0o700);
  writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
  return { ok: true, file, record: dkimDnsRecord(pem, selector, config.server.domain) };
}

/**
 * The signing options when server.yaml names a selector, else null. A configured key that cannot be read throws:
 * copies must wait (and be retried) rather than leave unsigned and fail DMARC.
 */
export function dkimSigning(config: Config): DkimSigning | null {
  const selector = config.server.dkim?.selector;
  if (!selector) return null;
  const file = dkimKeyFile(config.server.dataPath, selector);
  let privateKey: string;
  try {
    privateKey = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`dkim.selector is ${selector} but its key ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); run: embargo dkim generate --selector ${selector}`);
  }
  return { domainName: config.server.domain, keySelector: selector, privateKey, headerFieldNames: signedFields };
}
