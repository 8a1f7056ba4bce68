// Opens incoming OpenPGP mail (decrypt, verify) in worker threads sized to the machine, so that CPU work leaves the pipeline's thread free.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { OpenResult } from '../crypto/index.ts';
import { threadBootstrap } from '../util/thread-bootstrap.ts';

/** What a thread needs to load list keys itself (they are on disk by then: the pipeline loads each list's key first). */
export interface OpenPoolKeySettings {
  dataDir: string;
  passphrase?: string;
}

export interface OpenTask {
  raw: Buffer;
  listName: string;
  /** Members whose registered keys may have signed: address and armored public key. */
  members: Array<{ address: string; armored: string }>;
}

/** A list whose keys a thread loads before it says it is ready: the list key, and its members' keys parsed. */
export interface WarmList {
  listName: string;
  members: OpenTask['members'];
}

export type ToOpenThread =
  | { type: 'open'; id: number; raw: Uint8Array; listName: string; members: OpenTask['members'] }
  | { type: 'warm'; lists: WarmList[] };

export type FromOpenThread =
  | { type: 'ready' }
  | { type: 'opened'; id: number; result: OpenResult }
  | { type: 'failed'; id: number; name: string; stack: string }
  | { type: 'fatal'; message: string };

export interface OpenPool {
  /**
   * openMessage in a thread; rejects only for a bug (an exception there), like openMessage itself would throw. Call it
   * when `ready`: before that, the task waits for a thread to load.
   */
  open(task: OpenTask): Promise<OpenResult>;
  /** Whether a thread has loaded and takes tasks at once. Until then, the caller opens messages itself. */
  readonly ready: boolean;
  /**
   * Starts the threads not running yet; each loads its modules and these lists' keys in the background, and `ready`
   * turns true when the first has. Without lists: those of the last call.
   */
  warm(lists: WarmList[] | undefined): void;
  readonly size: number;
  close(): Promise<void>;
}

const bootstrap = threadBootstrap(import.meta.url, 'open-pool-thread');

/** A Buffer again: structured cloning turns Buffers into plain Uint8Arrays. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function revive(result: OpenResult): OpenResult {
  return result.ok ? { ok: true, message: { ...result.message, entity: asBuffer(result.message.entity) } } : result;
}

interface Pending {
  resolve(result: OpenResult): void;
  reject(error: Error): void;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  /** It has loaded its modules (openpgp) and answers at once. */
  loaded: boolean;
}

/**
 * One thread per core (availableParallelism, at least 1), started by warm() on first use, so an idle daemon pays
 * nothing for them, and the first post after a start does not wait for them to load: until one has, the caller opens
 * messages itself. A task goes to the loaded thread with the fewest tasks waiting; a thread that dies fails its tasks
 * (the pipeline opens them again or shunts them) and is started again by the next warm().
 */
export function createOpenPool(keys: OpenPoolKeySettings, size = Math.max(1, availableParallelism())): OpenPool {
  const threads: Array<Thread | null> = Array.from({ length: size }, () => null);
  let nextId = 1;
  let closed = false;

  const start = (slot: number): Thread => {
    const worker = new Worker(bootstrap, { eval: true, workerData: keys });
    const thread: Thread = { worker, pending: new Map(), loaded: false };
    const failAll = (error: Error) => {
      for (const pending of thread.pending.values()) pending.reject(error);
      thread.pending.clear();
      if (threads[slot] === thread) threads[slot] = null;
    };
    worker.on('message', (message: FromOpenThread) => {
      if (message.type === 'ready') {
        thread.loaded = true;
        return;
      }
      if (message.type === 'fatal') {
        failAll(new Error(`open thread could not start: ${message.message.split('\n')[0]}`));
        void worker.terminate();
        return;
      }
      const pending = thread.pending.get(message.id);
      if (!pending) return;
      thread.pending.delete(message.id);
      if (message.type === 'opened') pending.resolve(revive(message.result));
      else pending.reject(Object.assign(new Error(`exception while opening a message: ${message.name}`), { name: message.name, stack: message.stack }));
    });
    // Named so the pipeline can tell a dead thread (open again elsewhere) from an exception in openMessage (a bug).
    const stopped = (detail: string) => Object.assign(new Error(`open thread stopped: ${detail}`), { name: 'OpenThreadStopped' });
    worker.on('error', (error) => failAll(stopped(error.name)));
    worker.on('exit', (code) => failAll(stopped(`exit code ${code}`)));
    // Idle threads must not keep a stopping daemon alive.
    worker.unref();
    threads[slot] = thread;
    return thread;
  };

  /** What the last warm() asked threads to load; a thread started later (to replace a dead one) loads it too. */
  let warmLists: WarmList[] = [];
  const warm = (lists: WarmList[] = warmLists) => {
    if (closed) return;
    warmLists = lists;
    for (let slot = 0; slot < size; slot++) {
      if (threads[slot]) continue;
      const thread = start(slot);
      thread.worker.postMessage({ type: 'warm', lists } satisfies ToOpenThread);
    }
  };

  /** The loaded thread with the fewest tasks waiting; else any started one (the task waits for it to load). */
  const leastBusy = (): Thread => {
    warm();
    const running = threads.filter((thread): thread is Thread => thread !== null);
    const candidates = running.some((thread) => thread.loaded) ? running.filter((thread) => thread.loaded) : running;
    return candidates.reduce((best, thread) => (thread.pending.size < best.pending.size ? thread : best));
  };

  return {
    size,
    get ready() {
      return threads.some((thread) => thread?.loaded === true);
    },
    warm: (lists) => warm(lists),
    open(task) {
      if (closed) return Promise.reject(new Error('open pool closed'));
      const thread = leastBusy();
      const id = nextId++;
      return new Promise<OpenResult>((resolve, reject) => {
        thread.pending.set(id, { resolve, reject });
        thread.worker.ref();
        const message: ToOpenThread = { type: 'open', id, raw: task.raw, listName: task.listName, members: task.members };
        thread.worker.postMessage(message);
      }).finally(() => {
        if (thread.pending.size === 0) thread.worker.unref();
      });
    },
    async close() {
      closed = true;
      await Promise.all(threads.map((thread) => thread?.worker.terminate()));
      threads.fill(null);
    },
  };
}
