// Mail to NAME@: the post pipeline, then what each outcome means — the fan-out, a hold for the moderators, a bounce.
import type { MessageContext } from '../context.ts';
import { splitMessage } from '../headers.ts';
import { attachedMessage } from '../mime.ts';
import { recordHold, markDecisionDone } from '../moderation.ts';
import type { HeldPost } from '../moderation.ts';
import { adminAddresses, buildNotice, moderatorAddresses } from '../notices.ts';
import { postPipeline, runPipeline, stages } from '../pipeline.ts';
import { takeNoticeBudget } from '../reply-budget.ts';
import type { Stage, StageId } from '../pipeline.ts';
import { rejectionSummary, rejectionText } from '../rejections.ts';
import { counter, listLabel } from '../../util/metrics.ts';
import type { RoleOutcome } from './outcome.ts';
import { listAddressFor } from '../addresses.ts';

const postsRejected = counter('embargo_posts_rejected_total', 'Posts refused, by reason', ['list', 'reason']);
const posts = counter('embargo_posts_total', 'Posts processed by the list pipeline, by outcome', ['list', 'outcome']);

/** Runs the pipeline on a post (or carries out a moderator's decision on a held one). */
export async function handlePost(
  context: MessageContext,
  decision: HeldPost | null = null,
  table: Record<StageId, Stage> = stages,
): Promise<RoleOutcome> {
  const { list, services } = context;
  const now = services.now().getTime();
  const label = listLabel(context.config.server.metrics.listLabels, list);
  if (decision) {
    context.effects.push(() => markDecisionDone(services.db, context.spoolId, now));
    if (decision.decision === 'rejected') {
      postsRejected.inc({ list: label, reason: 'moderator-rejected' });
      await bounce(context, 'moderator-rejected', `rejected by ${decision.decidedBy ?? 'a moderator'}`, decision.rejectReason ?? undefined);
      return { state: 'rejected', outcome: 'reject', reason: `moderator-rejected: by ${decision.decidedBy ?? 'a moderator'}` };
    }
    context.approved = true;
  }
  const { result, stage, timings } = await runPipeline(context, postPipeline, table);
  services.logger.debug({ spoolId: context.spoolId, list: list.name, stage, outcome: result.kind, timings }, 'pipeline stages');
  posts.inc({ list: label, outcome: result.kind });
  switch (result.kind) {
    case 'accept':
      return { state: 'done', outcome: 'accept', reason: null };
    case 'discard':
      return { state: 'discarded', outcome: 'discard', reason: `${stage}: ${result.reason}` };
    case 'hold':
      await holdForModerators(context, result.reason);
      return { state: 'held', outcome: 'hold', reason: `${stage}: ${result.reason}` };
    case 'reject':
      postsRejected.inc({ list: label, reason: result.code });
      await bounce(context, result.code, result.detail, undefined, result.toSender);
      return { state: 'rejected', outcome: 'reject', reason: `${stage}: ${result.code}: ${result.detail}` };
  }
}

/** The sender's bounce (never to an empty return path or to ourselves) and the admins' notice with the original. */
async function bounce(context: MessageContext, code: Parameters<typeof rejectionText>[2], detail: string, moderatorReason?: string, toSender?: string): Promise<void> {
  const { config, list, listKey, services } = context;
  const now = services.now();
  const sender = context.envelopeFrom.toLowerCase();
  const ours = sender.endsWith(`@${config.server.domain.toLowerCase()}`);
  if (sender && !ours && takeNoticeBudget(context, 'reply', sender)) {
    context.outgoing.push(
      ...(await buildNotice(config, list, listKey, {
        to: [sender],
        subject: `Your message to ${list.name} was not distributed`,
        text: rejectionText(config, list, code, context.spoolId, moderatorReason, toSender),
        sensitive: false,
        inReplyTo: context.messageId,
        autoSubmitted: 'auto-replied',
      }, now)),
    );
  }
  // A flood of over-limit posts to a public list is not news for the admins, only for the metrics; nor is any flood
  // of refusals past the first notices of the hour (the spool keeps each one with its reason).
  if (code === 'rate-limited' || !takeNoticeBudget(context, 'refusal')) return;
  context.outgoing.push(
    ...(await buildNotice(config, list, listKey, {
      to: adminAddresses(config, list),
      subject: `${list.name}: a message was refused (${code})`,
      text: rejectionSummary(list, code, detail, context.spoolId, context.envelopeFrom, context.from?.address ?? null),
      // Encoded only for an admin with a usable key: the others get the withheld text (a flood's bombs cost no base64).
      attachments: () => [attachedMessage(context.raw)],
      sensitive: list.kind !== 'public',
      withheldText: `${rejectionSummary(list, code, detail, context.spoolId, context.envelopeFrom, context.from?.address ?? null)}\n\nThe original is not attached: no usable OpenPGP key is configured for you. It stays in the spool as ${context.spoolId}.`,
      autoSubmitted: 'auto-generated',
    }, now)),
  );
}

/** Moderators get the held post encrypted to them (private lists) and can answer "approve ID" or "reject ID reason". */
async function holdForModerators(context: MessageContext, reason: string): Promise<void> {
  const { config, list, listKey, services } = context;
  const now = services.now();
  const sender = context.from?.address ?? (context.envelopeFrom || null);
  context.effects.push(() => recordHold(services.db, { spoolId: context.spoolId, list: list.name, reason, sender, now: now.getTime() }));
  const request = listAddressFor(list, 'request', config.server.domain);
  const text = [
    `A message to ${list.address} is held for moderation (${reason}).`,
    '',
    `Held id:  ${context.spoolId}`,
    `From:     ${sender ?? '(none)'}${context.signer ? ` (signature by the registered key of ${context.signer.address})` : ''}`,
    '',
    `To decide, reply to ${request} with a signed message whose first line is`,
    `  approve ${context.spoolId}`,
    'or',
    `  reject ${context.spoolId} REASON`,
    `or run on the server: embargo approve ${context.spoolId} / embargo reject ${context.spoolId} --reason TEXT`,
    '',
    'The post is attached as the members would read it.',
  ].join('\n');
  const attachments = context.opened ? [attachedMessage(heldCopy(context), 'held-post.eml')] : [];
  context.outgoing.push(
    ...(await buildNotice(config, list, listKey, {
      to: moderatorAddresses(config, list),
      subject: `${list.name}: a post is held for moderation (${context.spoolId})`,
      text,
      attachments,
      sensitive: list.kind !== 'public',
      withheldText: `A message to ${list.address} is held for moderation: ${context.spoolId}. No usable OpenPGP key is configured for you, so it is not attached; run embargo held ${list.name} on the server.`,
      fromRole: 'request',
      replyToRole: 'request',
      autoSubmitted: 'auto-generated',
    }, now)),
  );
}

/** The decrypted post as the moderators read it: the poster's entity with the outer From and Subject. */
function heldCopy(context: MessageContext): Buffer {
  const entity = context.opened?.entity ?? context.raw;
  const headers = context.outer.headers.filter(([name]) => ['from', 'date', 'message-id'].includes(name.toLowerCase()));
  const innerSubject = context.opened?.protectedHeaders.Subject ?? context.opened?.protectedHeaders.subject;
  if (innerSubject) headers.push(['Subject', innerSubject]);
  const inner = splitMessage(entity);
  const hasOwn = new Set(inner.headers.map(([name]) => name.toLowerCase()));
  const prefix = headers.filter(([name]) => !hasOwn.has(name.toLowerCase())).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return Buffer.concat([Buffer.from(prefix), entity]);
}
