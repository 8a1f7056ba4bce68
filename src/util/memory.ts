// Collects garbage on request after the steps that copy a very large message, so the next step reuses that memory.
//
// Why: decrypting, archiving and sealing a 25 MiB post each leave several copies of it behind. V8 frees them when it
// decides to, and the daemon's peak memory then depended on that timing (490-565 MiB for one 25 MiB post to 100
// members, run to run). A full collection after each of those steps costs tens of milliseconds, only for big messages.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Messages from this size on are followed by a collection after each step that copies them. */
export const bigMessageBytes = 8 * 1024 * 1024;

let collect: (() => void) | null | undefined;

/** A full garbage collection now; does nothing if this Node cannot expose it. */
export function collectGarbage(): void {
  if (collect === undefined) {
    try {
      // The flag only adds the gc function to contexts created from now on; one new context fetches it.
      setFlagsFromString('--expose-gc');
      const found: unknown = runInNewContext('gc');
      collect = typeof found === 'function' ? (found as () => void) : null;
    } catch {
      collect = null;
    }
  }
  collect?.();
}
