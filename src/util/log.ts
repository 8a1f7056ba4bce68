// The daemon's logger: pino JSON by default, readable on a terminal; callers pass ids, never bodies, subjects or keys.
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string = process.env.EMBARGO_LOG_LEVEL ?? 'info'): Logger {
  const pretty = process.stdout.isTTY && !process.env.CI;
  return pino({
    level,
    base: { service: 'embargo' },
    // Defence in depth: even if a caller passes these by mistake, they are not written.
    redact: { paths: ['subject', 'body', 'raw', 'key', 'privateKey', 'passphrase', '*.subject', '*.body', '*.raw'], remove: true },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard' } } } : {}),
  });
}
