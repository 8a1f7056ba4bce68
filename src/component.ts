// What a part of the daemon is (Component) and what the daemon hands it (DaemonContext): the contract between daemon.ts and the parts it runs.
import type { Config } from './config/types.ts';
import type { ListKey } from './crypto/index.ts';
import type { Spool } from './queues/spool.ts';
import type { Db } from './store/database.ts';
import type { Logger } from './util/log.ts';

/** A part of the daemon with a lifetime: started after SMTP intake, stopped (in reverse order) after it. */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What a component gets to work with. */
export interface DaemonContext {
  /** The live config; a hot reload swaps what this returns. */
  config(): Config;
  db: Db;
  spool: Spool;
  logger: Logger;
  /** The list's key pair, generated on first use and cached. */
  listKey(listName: string): Promise<ListKey>;
  /** Called with each spool id right after its commit (the pipeline worker wakes up on it). */
  onSpooled(listener: (id: string) => void): void;
  /** Called after a valid config change has been applied. */
  onConfigReload(listener: (config: Config) => void): void;
  /** A component that listens on a port says so here; logs `{"msg":"NAME listening","port":N}`. */
  reportListening(name: string, port: number): void;
}

export type ComponentFactory = (context: DaemonContext) => Component | Promise<Component>;
