// Real GnuPG for tests: a throwaway GNUPGHOME with key generation, export, encrypt/sign/decrypt/verify and parsed --status-fd lines.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StatusLine {
  keyword: string;
  args: string[];
}

export interface GpgResult {
  code: number;
  stdout: Buffer;
  stderr: string;
  status: StatusLine[];
  /** Whether a status keyword (e.g. GOODSIG, VALIDSIG, DECRYPTION_OKAY) was reported. */
  has(keyword: string): boolean;
  /** Arguments of the first status line with this keyword. */
  args(keyword: string): string[] | undefined;
}

export interface GpgKey {
  fingerprint: string;
  address: string;
  /** Fingerprint of the encryption subkey, when one was made. */
  encryptionSubkey?: string;
}

export interface GenerateOptions {
  address: string;
  name?: string;
  /** 'ed25519' (with a cv25519 subkey; the default), 'rsa2048', 'rsa3072', 'rsa4096', 'rsa1024' (for weak-key tests). */
  algorithm?: 'ed25519' | 'rsa1024' | 'rsa2048' | 'rsa3072' | 'rsa4096';
  /** gpg expire spec, e.g. '1d', '2y', 'seconds=600'; default never. */
  expire?: string;
  /** Leave out the encryption subkey (for "no encryption subkey" tests). */
  signOnly?: boolean;
  /** Create the key as of this time (gpg --faked-system-time), e.g. to get an already expired key. */
  at?: Date;
  /** Extra gpg options for the generation, e.g. ['--cert-digest-algo', 'SHA1']. */
  extraArgs?: string[];
}

export interface EncryptOptions {
  recipients: string[];
  /** Sign too (combined sign+encrypt) with this key. */
  signer?: string;
  armor?: boolean;
  /** Passed as -z; 0 disables compression. */
  compressLevel?: number;
  compressAlgo?: 'zlib' | 'zip' | 'bzip2' | 'none';
  /** Treat input as text (--textmode). */
  textmode?: boolean;
  extraArgs?: string[];
}

export interface GpgHome {
  home: string;
  run(args: string[], input?: Buffer | string | NodeJS.ReadableStream): Promise<GpgResult>;
  generateKey(options: GenerateOptions): Promise<GpgKey>;
  importKey(armored: string | Buffer): Promise<GpgResult>;
  exportPublic(fingerprint: string): Promise<string>;
  exportSecret(fingerprint: string): Promise<string>;
  encrypt(input: Buffer | string | NodeJS.ReadableStream, options: EncryptOptions): Promise<Buffer>;
  /** Opaque (not clear) signature, armored: gpg --sign --armor. */
  sign(input: Buffer | string, signer: string, extraArgs?: string[]): Promise<Buffer>;
  clearsign(input: Buffer | string, signer: string, extraArgs?: string[]): Promise<Buffer>;
  /** Detached armored signature, as used by PGP/MIME multipart/signed. */
  detachSign(input: Buffer | string, signer: string, extraArgs?: string[]): Promise<Buffer>;
  decrypt(input: Buffer | string): Promise<GpgResult>;
  verify(input: Buffer | string, detachedSignature?: Buffer | string): Promise<GpgResult>;
  listPackets(input: Buffer | string): Promise<string>;
  /** Revokes the key with the revocation certificate gpg made at generation time; returns the revoked public key. */
  revoke(fingerprint: string): Promise<string>;
  cleanup(): Promise<void>;
}

const BASE_ARGS = ['--batch', '--yes', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', '--trust-model', 'always', '--no-auto-key-locate'];

/** A time for gpg --faked-system-time (append '!' to freeze the clock there). */
export function gpgTime(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, '');
}

function parseStatus(text: string): StatusLine[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('[GNUPG:] '))
    .map((line) => {
      const [keyword, ...args] = line.slice('[GNUPG:] '.length).trim().split(' ');
      return { keyword, args };
    });
}

function runGpg(home: string, args: string[], input?: Buffer | string | NodeJS.ReadableStream): Promise<GpgResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('gpg', ['--homedir', home, ...BASE_ARGS, '--status-fd', '3', ...args], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const status: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const statusStream = child.stdio[3] as NodeJS.ReadableStream;
    statusStream.on('data', (chunk: Buffer) => status.push(chunk));
    child.on('error', reject);
    child.stdin.on('error', () => undefined); // gpg may exit before reading all input (e.g. a wrong key)
    if (input === undefined) child.stdin.end();
    else if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
    child.on('close', (code) => {
      const lines = parseStatus(Buffer.concat(status).toString('utf8'));
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(stdout),
        stderr: Buffer.concat(stderr).toString('utf8'),
        status: lines,
        has: (keyword) => lines.some((line) => line.keyword === keyword),
        args: (keyword) => lines.find((line) => line.keyword === keyword)?.args,
      });
    });
  });
}

function expectOk(result: GpgResult, what: string): GpgResult {
  if (result.code !== 0) throw new Error(`gpg ${what} failed (${result.code}): ${result.stderr}`);
  return result;
}

/** Creates an empty GNUPGHOME under the system temp dir (short path: gpg-agent's socket path is length-limited). */
export async function createGpgHome(): Promise<GpgHome> {
  const home = await mkdtemp(join(tmpdir(), 'gpg-'));
  await writeFile(join(home, 'gpg-agent.conf'), 'allow-loopback-pinentry\n');
  const run = (args: string[], input?: Buffer | string | NodeJS.ReadableStream) => runGpg(home, args, input);

  const fingerprintsOf = async (address: string): Promise<{ primary: string; subkeys: string[] }> => {
    const listing = expectOk(await run(['--with-colons', '--list-keys', `<${address}>`]), 'list-keys').stdout.toString('utf8');
    const fingerprints = listing
      .split('\n')
      .filter((line) => line.startsWith('fpr:'))
      .map((line) => line.split(':')[9]);
    return { primary: fingerprints[0], subkeys: fingerprints.slice(1) };
  };

  const self: GpgHome = {
    home,
    run,
    async generateKey(options) {
      const algorithm = options.algorithm ?? 'ed25519';
      const expire = options.expire ?? 'never';
      const timeArgs = options.at ? ['--faked-system-time', `${gpgTime(options.at)}!`] : [];
      const extra = options.extraArgs ?? [];
      const userId = `${options.name ?? options.address.split('@')[0]} <${options.address}>`;
      const primaryUsage = algorithm === 'ed25519' ? 'sign' : 'sign,cert';
      expectOk(await run([...timeArgs, ...extra, '--quick-gen-key', userId, algorithm, primaryUsage, expire]), 'quick-gen-key');
      const { primary } = await fingerprintsOf(options.address);
      if (!options.signOnly) {
        const subAlgorithm = algorithm === 'ed25519' ? 'cv25519' : algorithm;
        expectOk(await run([...timeArgs, ...extra, '--quick-add-key', primary, subAlgorithm, 'encr', expire]), 'quick-add-key');
      }
      const { subkeys } = await fingerprintsOf(options.address);
      return { fingerprint: primary, address: options.address, encryptionSubkey: subkeys[0] };
    },
    async importKey(armored) {
      return expectOk(await run(['--import'], armored), 'import');
    },
    async exportPublic(fingerprint) {
      return expectOk(await run(['--armor', '--export', fingerprint]), 'export').stdout.toString('utf8');
    },
    async exportSecret(fingerprint) {
      return expectOk(await run(['--armor', '--export-secret-keys', fingerprint]), 'export-secret-keys').stdout.toString('utf8');
    },
    async encrypt(input, options) {
      const args = [...(options.extraArgs ?? [])];
      if (options.armor ?? true) args.push('--armor');
      if (options.textmode) args.push('--textmode');
      if (options.compressAlgo) args.push('--compress-algo', options.compressAlgo);
      if (options.compressLevel !== undefined) args.push('-z', String(options.compressLevel));
      for (const recipient of options.recipients) args.push('--recipient', recipient);
      if (options.signer) args.push('--local-user', options.signer, '--sign');
      args.push('--encrypt');
      return expectOk(await run(args, input), 'encrypt').stdout;
    },
    async sign(input, signer, extraArgs = []) {
      return expectOk(await run([...extraArgs, '--armor', '--local-user', signer, '--sign'], input), 'sign').stdout;
    },
    async clearsign(input, signer, extraArgs = []) {
      return expectOk(await run([...extraArgs, '--local-user', signer, '--clearsign'], input), 'clearsign').stdout;
    },
    async detachSign(input, signer, extraArgs = []) {
      return expectOk(await run([...extraArgs, '--armor', '--local-user', signer, '--detach-sign'], input), 'detach-sign').stdout;
    },
    async decrypt(input) {
      return run(['--decrypt'], input);
    },
    async verify(input, detachedSignature) {
      if (detachedSignature === undefined) return run(['--verify'], input);
      const signatureFile = join(home, `signature-${Date.now()}-${Math.random()}.asc`);
      await writeFile(signatureFile, detachedSignature);
      try {
        return await run(['--verify', signatureFile, '-'], input);
      } finally {
        await rm(signatureFile, { force: true });
      }
    },
    async listPackets(input) {
      const result = await run(['--list-packets'], input);
      return result.stdout.toString('utf8');
    },
    async revoke(fingerprint) {
      const certificate = await readFile(join(home, 'openpgp-revocs.d', `${fingerprint}.rev`), 'utf8');
      // gpg writes the certificate with a ':' before the armor line so it cannot be imported by accident.
      expectOk(await run(['--import'], certificate.replace(/^:-----BEGIN/m, '-----BEGIN')), 'import revocation');
      return self.exportPublic(fingerprint);
    },
    async cleanup() {
      await new Promise<void>((resolve) => {
        const child = spawn('gpgconf', ['--homedir', home, '--kill', 'all'], { stdio: 'ignore' });
        child.on('close', () => resolve());
        child.on('error', () => resolve());
      });
      await rm(home, { recursive: true, force: true });
    },
  };
  return self;
}
