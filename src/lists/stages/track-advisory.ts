// Stage track-advisory: an announce-list post with an advisory id becomes that advisory's newest revision (signed content only).
import { publishableContent, sealRevision } from '../../advisories/content.ts';
import { identifyAdvisory, signedTextOf } from '../../advisories/identify.ts';
import { describeDate, noticeToPosters } from '../../advisories/notify.ts';
import { findAdvisory, recordRevision } from '../../advisories/store.ts';
import { proceed } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { decodeWords } from '../headers.ts';

function protectedHeader(context: MessageContext, name: string): string | null {
  const opened = context.opened;
  // Only headers inside the encryption count: on a signed-only post they would travel in clear, open to any hop.
  if (!opened?.encrypted) return null;
  const value = Object.entries(opened.protectedHeaders).find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];
  return value === undefined ? null : value;
}

export async function trackAdvisory(context: MessageContext): Promise<StageResult> {
  const { list, opened, clean, services, config } = context;
  if (list.kind !== 'announce' || !list.advisoryPattern) return proceed;
  if (!opened?.verification.valid || !clean) return proceed;

  const subject = protectedHeader(context, 'Subject');
  const identity = identifyAdvisory(list, {
    subject: subject === null ? null : decodeWords(subject),
    embargoHeader: protectedHeader(context, 'X-Embargo-Until'),
    text: await signedTextOf(opened.entity),
  });
  if (!identity.advisoryId) return proceed;
  const advisoryId = identity.advisoryId;
  context.advisory = { advisoryId };

  const sealed = await sealRevision(context.listKey, {
    advisoryId,
    title: identity.title,
    copy: {
      content: clean.content,
      protectedHeaders: clean.protectedHeaders,
      note: clean.note,
      outerHeaders: clean.outerHeaders,
      messageId: clean.messageId,
    },
    publishable: publishableContent(opened),
  });
  const now = services.now();
  const signedBy = opened.verification.signingFingerprint ?? null;
  context.effects.push(() => {
    const recorded = recordRevision(services.db, {
      list: list.name,
      advisoryId,
      spoolId: context.spoolId,
      receivedAt: context.receivedAt,
      date: identity.date,
      signedBy,
      sealed,
      now,
    });
    services.logger.info(
      { spoolId: context.spoolId, list: list.name, advisory: advisoryId, revision: recorded.revision, state: recorded.advisory.state, embargoUntil: recorded.advisory.embargoUntil },
      'advisory revision recorded',
    );
  });

  // The confirmation is written now (sealing is async); the revision number is the one the effect will give it.
  const before = findAdvisory(services.db, list.name, advisoryId);
  const revision = (before?.revision ?? 0) + 1;
  const lines = [`${list.address} received revision ${revision} of ${advisoryId}: ${identity.title}`, ''];
  let subjectLine: string;
  if (before?.state === 'released') {
    subjectLine = `${advisoryId} revision ${revision}: published as an update`;
    lines.push(`${advisoryId} was released already, so this revision is published at the next release pass.`);
  } else if (identity.date.kind === 'date') {
    const moved = before?.embargoUntil && before.embargoUntil.getTime() !== identity.date.at.getTime();
    subjectLine = `${advisoryId} revision ${revision}: embargo until ${describeDate(identity.date.at)}`;
    lines.push(
      moved
        ? `The embargo end moves from ${describeDate(before.embargoUntil)} to ${describeDate(identity.date.at)}.`
        : `The embargo ends ${describeDate(identity.date.at)}; the advisory is published then${list.publishTo ? ` to ${list.publishTo}` : ''}.`,
    );
    if (identity.date.at.getTime() <= now.getTime()) lines.push('That time has passed: it is published at the next release pass (within a minute).');
  } else if (identity.date.kind === 'ambiguous') {
    subjectLine = `${advisoryId} revision ${revision}: NOT scheduled`;
    lines.push(
      `Nothing is scheduled: ${identity.date.detail}.`,
      'The advisory will not be published until a revision gives one date, or a poster sends a signed',
      `"advisory postpone ${advisoryId} DATE" or "advisory release ${advisoryId}" to the -request address.`,
    );
  } else {
    subjectLine = `${advisoryId} revision ${revision}: ${before?.embargoUntil ? `embargo still until ${describeDate(before.embargoUntil)}` : 'no embargo date'}`;
    lines.push(
      before?.embargoUntil
        ? `This revision gives no date, so the embargo end stays ${describeDate(before.embargoUntil)}.`
        : 'No embargo date was found in the signed content, so nothing is scheduled.',
    );
  }
  lines.push('', `Commands (signed, to ${list.name}-request@${config.server.domain}): advisory postpone ${advisoryId} DATE | advisory cancel ${advisoryId} | advisory release ${advisoryId}`);
  context.outgoing.push(...(await noticeToPosters(config, list, context.listKey, { subject: subjectLine, lines, inReplyTo: context.messageId }, now)));
  return proceed;
}
