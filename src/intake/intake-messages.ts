// The messages between the daemon and its SMTP intake thread (both directions), as plain structured-clone values.
import type { Config } from '../config/types.ts';
import type { Migration } from '../store/migrations.ts';

export interface IntakeThreadData {
  config: Config;
  databaseFile: string;
  /** Handed in by the daemon, which has applied them already (store/ knows no module's tables). */
  migrations: readonly Migration[];
  /** pino level number below which the thread does not relay log calls. */
  logLevel: number;
  shutdownTimeoutMs: number;
}

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error';

export type ToIntakeThread =
  | { type: 'config'; config: Config; logLevel: number }
  | { type: 'reload-tls' }
  | { type: 'close' };

export type FromIntakeThread =
  | { type: 'listening'; port: number }
  | { type: 'spooled'; id: string }
  | { type: 'post-arriving' }
  | { type: 'log'; level: LogLevelName; fields: Record<string, unknown>; message: string }
  | { type: 'increment'; name: string; labels: Record<string, string>; by: number; help: string }
  | { type: 'observe'; name: string; seconds: number; help: string; buckets?: number[] }
  | { type: 'closed' }
  | { type: 'fatal'; message: string };
