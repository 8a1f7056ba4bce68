// A private Debian Postfix instance for tests: its own queue and config directory, smtpd on a free loopback port, plus whatever main.cf lines a test adds.
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const postfixBinary = '/usr/sbin/postfix';

export interface PostfixInstance {
  /** The directory holding main.cf, master.cf, the queue and maillog. */
  dir: string;
  /** Where smtpd listens on 127.0.0.1. */
  port: number;
  /** The last lines of its log, for failure messages. */
  maillog(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`postfix did not listen on 127.0.0.1:${port} within ${timeoutMs} ms:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const masterCf = (port: number) =>
  [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
    '',
  ].join('\n');

/**
 * Starts Postfix (needs root and Debian's postfix package). `mainCf` lines come after the instance's own settings,
 * so a test can add a documented snippet; `files` are written into the instance directory first.
 */
export async function startPostfix(options: {
  /** Lines for main.cf, or a function of the instance directory giving them (for paths of `files`). */
  mainCf: string[] | ((dir: string) => string[]);
  /** Files written into the instance directory, by name; a function gets the directory. */
  files?: Record<string, string | ((dir: string) => string)>;
  port?: number;
}): Promise<PostfixInstance> {
  if (!existsSync(postfixBinary)) {
    throw new Error(`${postfixBinary} is missing: this test needs Debian's postfix (apt-get install -y postfix; .ci/run installs it)`);
  }
  if (process.getuid?.() !== 0) throw new Error('postfix needs root to start its master process; run this test as root (as .ci/run does)');
  const { stdout: uidText } = await run('id', ['-u', 'postfix']);
  const dir = mkdtempSync(join(tmpdir(), 'embargo-postfix-'));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'queue'));
  mkdirSync(join(dir, 'data'));
  chownSync(join(dir, 'data'), Number(uidText.trim()), 0);
  const port = options.port ?? (await freePort());
  const maillog = () => {
    const file = join(dir, 'maillog');
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-40).join('\n') : '(no maillog)';
  };
  const postfix = async (command: 'start' | 'stop' | 'abort') => {
    try {
      await run(postfixBinary, ['-c', dir, command], { timeout: 30_000 });
    } catch (error) {
      const failure = error as { stderr?: string; stdout?: string; message: string };
      throw new Error(`postfix -c ${dir} ${command} failed: ${failure.message}\n${failure.stdout ?? ''}${failure.stderr ?? ''}\nmaillog:\n${maillog()}`);
    }
  };
  for (const [name, contents] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), typeof contents === 'function' ? contents(dir) : contents);
  writeFileSync(
    join(dir, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      `maillog_file = ${dir}/maillog`,
      `maillog_file_prefixes = ${tmpdir()}`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'alias_maps =',
      'alias_database =',
      'smtpd_tls_security_level = none',
      'smtp_tls_security_level = none',
      'smtputf8_enable = no',
      // Hand mail on at once, and do not hold it long when a peer is briefly unreachable.
      'queue_run_delay = 1s',
      'minimal_backoff_time = 1s',
      'maximal_backoff_time = 2s',
      ...(typeof options.mainCf === 'function' ? options.mainCf(dir) : options.mainCf),
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'master.cf'), masterCf(port));
  await postfix('start');
  await waitForPort(port, 15_000, maillog);
  return {
    dir,
    port,
    maillog,
    async stop() {
      await postfix('stop').catch(() => postfix('abort'));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
