// Opens incoming OpenPGP mail (decrypt, verify) in worker threads sized to the machine, so that CPU work leaves the pipeline's thread free.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { OpenResult } from '../crypto/index.ts';
import { threadBootstrap } from '../util/thread-bootstrap.ts';

/** What a thread needs to load list keys itself (they are on disk by then: the pipeline loads each list's key first). */
export interface OpenPoolKeySettings {
  dataDir: string;
  domain: string;
  algorithm: 'curve25519' | 'rsa4096';
  passphrase?: string;
}

export interface OpenTask {
  raw: Buffer;
  listName: string;
  /** Members whose registered keys may have signed: address and armored public key. */
  members: Array<{ address: string; armored: string }>;
}

export type ToOpenThread = { type: 'open'; id: number; raw: Uint8Array; listName: string; members: OpenTask['members'] };

export type FromOpenThread =
  | { type: 'opened'; id: number; result: OpenResult }
  | { type: 'failed'; id: number; name: string; stack: string }
  | { type: 'fatal'; message: string };

export interface OpenPool {
  /** openMessage in a thread; rejects only for a bug (an exception there), like openMessage itself would throw. */
  open(task: OpenTask): Promise<OpenResult>;
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
}

/**
 * One thread per core (availableParallelism, at least 1), started on first use so an idle daemon pays nothing for
 * them. A task goes to the thread with the fewest tasks waiting; a thread that dies fails its tasks (the pipeline
 * shunts those messages, as for any exception) and is replaced at the next task.
 */
export function createOpenPool(keys: OpenPoolKeySettings, size = Math.max(1, availableParallelism())): OpenPool {
  const threads: Array<Thread | null> = Array.from({ length: size }, () => null);
  let nextId = 1;
  let closed = false;

  const start = (slot: number): Thread => {
    const worker = new Worker(bootstrap, { eval: true, workerData: keys });
    const thread: Thread = { worker, pending: new Map() };
    const failAll = (error: Error) => {
      for (const pending of thread.pending.values()) pending.reject(error);
      thread.pending.clear();
      if (threads[slot] === thread) threads[slot] = null;
    };
    worker.on('message', (message: FromOpenThread) => {
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

  const leastBusy = (): Thread => {
    let best = 0;
    for (let slot = 1; slot < size; slot++) {
      if ((threads[slot]?.pending.size ?? 0) < (threads[best]?.pending.size ?? 0)) best = slot;
    }
    return threads[best] ?? start(best);
  };

  return {
    size,
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
