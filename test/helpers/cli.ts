// The embargo command run inside the test process: no new Node and tsx per call (4-10 s each on a loaded machine), same output and exit code.
import { main } from '../../src/cli/main.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

type Write = typeof process.stdout.write;

/**
 * Runs `embargo ARGS` through the CLI's own entry point, capturing what it writes to stdout and stderr and the exit code
 * it sets. One call at a time (it borrows this process's streams and exit code); commands that keep running (serve, sink)
 * need a real process instead.
 */
export async function runCliInProcess(args: string[]): Promise<CliResult> {
  const output = { stdout: '', stderr: '' };
  const capture = (stream: keyof typeof output): Write =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      output[stream] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      const callback = rest.find((argument) => typeof argument === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as Write;
  const original = { stdout: process.stdout.write, stderr: process.stderr.write, exitCode: process.exitCode };
  process.exitCode = undefined;
  process.stdout.write = capture('stdout');
  process.stderr.write = capture('stderr');
  try {
    await main(['node', 'embargo', ...args]);
    return { code: Number(process.exitCode ?? 0), ...output };
  } finally {
    process.stdout.write = original.stdout;
    process.stderr.write = original.stderr;
    process.exitCode = original.exitCode;
  }
}
