// Intake backpressure: refuses mail with a 4xx while too much waits unprocessed (per client address, in all) or the disk nears full.
import { statfsSync } from 'node:fs';
import type { Spool } from '../queues/spool.ts';

export interface BackpressureSettings {
  maxBacklogPerAddress: number;
  maxBacklog: number;
  freeSpaceReserveMiB: number;
}

export type BackpressureDecision =
  | { ok: true }
  | { ok: false; code: 451 | 452; reason: 'backlog-address' | 'backlog-total' | 'disk-reserve'; message: string };

export interface Backpressure {
  /** At MAIL FROM: the cheapest point, before the client sends the message. `declaredSize` is the SIZE= parameter. */
  beforeMessage(remoteAddress: string | null, declaredSize: number): BackpressureDecision;
  /** At the end of DATA, before the spool commit: the message's real size against the disk reserve. */
  beforeStore(size: number): BackpressureDecision;
}

const mebibyte = 1024 * 1024;

/** Bytes available to this process on the file system holding `directory`; null if it cannot be read (then no refusal). */
function availableBytes(directory: string): number | null {
  try {
    const stats = statfsSync(directory);
    return stats.bavail * stats.bsize;
  } catch {
    return null;
  }
}

/** `settings` and `dataDirectory` are read on every call, so a config reload applies to running connections. */
export function createBackpressure(spool: Spool, settings: () => BackpressureSettings, dataDirectory: () => string): Backpressure {
  const diskCheck = (incomingBytes: number): BackpressureDecision => {
    const reserve = settings().freeSpaceReserveMiB * mebibyte;
    if (reserve === 0) return { ok: true };
    const available = availableBytes(dataDirectory());
    if (available === null || available - incomingBytes >= reserve) return { ok: true };
    return { ok: false, code: 452, reason: 'disk-reserve', message: '4.3.1 insufficient system storage, try again later' };
  };
  return {
    beforeMessage(remoteAddress, declaredSize) {
      const limits = settings();
      const backlog = spool.backlog(remoteAddress);
      // 4.7.1 (RFC 3463 "delivery not authorized", temporary): the usual reply of greylisting and rate limits, which
      // every MTA retries later.
      if (backlog.fromAddress >= limits.maxBacklogPerAddress) {
        return { ok: false, code: 451, reason: 'backlog-address', message: '4.7.1 too many of your messages are waiting to be processed, try again later' };
      }
      if (backlog.total >= limits.maxBacklog) {
        return { ok: false, code: 451, reason: 'backlog-total', message: '4.3.2 too many messages are waiting to be processed, try again later' };
      }
      return diskCheck(declaredSize);
    },
    beforeStore(size) {
      return diskCheck(size);
    },
  };
}
