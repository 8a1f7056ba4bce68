// Sequoia (`sq`, Debian package sq) as a second OpenPGP implementation on the members' side: decrypt a copy and check the list's signature.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SqResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function runSq(args: string[], input?: Buffer | string): Promise<SqResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sq', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error('sq (Sequoia) is not installed: apt-get install sq (.ci/run installs it)') : error),
    );
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') }));
  });
}

/**
 * Decrypts an armored message with the member's secret key and requires a good signature by `signerCert` (sq fails
 * when the signature does not verify under its standard policy, e.g. SHA-1 binding signatures, and then prints nothing).
 */
export async function sqDecryptAndVerify(armoredMessage: string, memberSecretKey: string, signerCert: string): Promise<SqResult> {
  const directory = await mkdtemp(join(tmpdir(), 'sq-'));
  try {
    const key = join(directory, 'member.sec.asc');
    const cert = join(directory, 'signer.asc');
    await writeFile(key, memberSecretKey);
    await writeFile(cert, signerCert);
    return await runSq(['decrypt', '--recipient-key', key, '--signer-cert', cert], armoredMessage);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
