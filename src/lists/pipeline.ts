// The order of the stages a post to a list goes through, in one place; each stage is a file in stages/ named after its id.
import type { MessageContext, StageResult } from './context.ts';
import { archive } from './stages/archive.ts';
import { authorize } from './stages/authorize.ts';
import { bindSignature } from './stages/bind-signature.ts';
import { buildCleanCopy } from './stages/build-clean-copy.ts';
import { checkSize } from './stages/check-size.ts';
import { decrypt } from './stages/decrypt.ts';
import { detectLoop } from './stages/detect-loop.ts';
import { detectReplay } from './stages/detect-replay.ts';
import { fanOut } from './stages/fan-out.ts';
import { limitRate } from './stages/limit-rate.ts';
import { moderate } from './stages/moderate.ts';
import { trackAdvisory } from './stages/track-advisory.ts';
import { verify } from './stages/verify.ts';
import { histogram } from '../util/metrics.ts';
import { bigMessageBytes, collectGarbage } from '../util/memory.ts';

const fanoutSeconds = histogram('embargo_fanout_seconds', 'Time of the fan-out stage per post (sealing every copy)');

export type Stage = (context: MessageContext) => StageResult | Promise<StageResult>;

/** Every post, whatever the list kind; a stage that does not apply to a kind returns `continue`. */
export const postPipeline = [
  'detect-loop', //       our own copies, bounces, auto-replies: discard
  'check-size', //        the list's size limit: reject
  'decrypt', //           list key; private lists take only encrypted posts
  'verify', //            private lists: a valid signature by a member's registered key
  'bind-signature', //    the signature is fresh (signatures.maxAgeHours, no future date) and its signed To/Cc name the list
  'authorize', //         announce: posters only; discussion: any member; From and signing key are the same member
  'detect-replay', //     a signature any list accepted, or the same Message-ID again: reject (public: discard)
  'limit-rate', //        public lists: posts per sender per hour
  'moderate', //          moderated lists: hold until a moderator decides
  'build-clean-copy', //  From rewritten, List-* headers, verification note
  'track-advisory', //    announce: the signed advisory id and embargo date make this post a revision
  'archive', //           encrypted at rest for private lists
  'fan-out', //           per-recipient sealing, withheld notices: accept
] as const;

export type StageId = (typeof postPipeline)[number];

/** Stages that leave copies of the message behind; after them a big message's garbage is collected at once. */
const copyingStages: ReadonlySet<StageId> = new Set(['decrypt', 'archive', 'fan-out']);

export const stages: Record<StageId, Stage> = {
  'detect-loop': detectLoop,
  'check-size': checkSize,
  decrypt,
  verify,
  'bind-signature': bindSignature,
  authorize,
  'detect-replay': detectReplay,
  'limit-rate': limitRate,
  moderate,
  'build-clean-copy': buildCleanCopy,
  'track-advisory': trackAdvisory,
  archive,
  // Timed: the fan-out duration histogram on /metrics (sealing every copy is the costly part of a post).
  'fan-out': async (context) => {
    const started = performance.now();
    try {
      return await fanOut(context);
    } finally {
      fanoutSeconds.observe((performance.now() - started) / 1000);
    }
  },
};

export interface PipelineOutcome {
  result: Exclude<StageResult, { kind: 'continue' }>;
  /** The stage that decided. */
  stage: StageId;
  /** Milliseconds per stage that ran, for the debug log and tuning. */
  timings: Partial<Record<StageId, number>>;
}

/** Runs the stages in order until one decides; running off the end means accept. Exceptions propagate: they are bugs. */
export async function runPipeline(
  context: MessageContext,
  order: readonly StageId[] = postPipeline,
  table: Record<StageId, Stage> = stages,
): Promise<PipelineOutcome> {
  const timings: Partial<Record<StageId, number>> = {};
  for (const id of order) {
    const started = performance.now();
    const result = await table[id](context);
    if (copyingStages.has(id) && context.raw.length >= bigMessageBytes) collectGarbage();
    timings[id] = Math.round((performance.now() - started) * 10) / 10;
    if (result.kind !== 'continue') return { result, stage: id, timings };
  }
  return { result: { kind: 'accept' }, stage: order[order.length - 1], timings };
}
