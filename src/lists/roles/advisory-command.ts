// A poster's signed `advisory postpone|cancel|release ID` to LIST-request@: checked, carried out once, confirmed to the posters.
import { applyControl, parseControl } from '../../advisories/control.ts';
import { noticeToPosters } from '../../advisories/notify.ts';
import { acceptSignatureOnce, earlierSignatureUse } from '../replay-marks.ts';
import type { Member } from '../../config/types.ts';
import type { OpenedMessage } from '../../crypto/index.ts';
import type { MessageContext } from '../context.ts';
import type { Command } from '../commands.ts';

/** Clocks differ: a signature this far in the future still counts (as for posts). */
const clockSkewMs = 5 * 60_000;

/**
 * Carries out one advisory command and returns the transcript line. Refusals use the same words for a stranger, a
 * member without the poster role and an unsigned request, so the reply reveals nothing about who is on the list.
 */
export async function advisoryCommand(
  context: MessageContext,
  requester: Member | null,
  command: Command,
  signedLine: boolean,
  opened: OpenedMessage | null,
): Promise<string> {
  const { list, services, config } = context;
  const refusal = `Advisory commands need a request whose body is signed with the registered key of one of the list's posters (and encrypted to the list key).`;
  if (list.kind !== 'announce') return 'This list has no advisories.';
  const allowed = requester && (requester.roles.includes('poster') || requester.roles.includes('admin'));
  // The signature's identity (its signed data and hash), shared with posts: a signature accepted anywhere acts once.
  const digest = opened?.verification.valid ? (opened.verification.digest ?? null) : null;
  if (!allowed || !requester || !signedLine || !opened || !digest) return refusal;
  const now = services.now();
  const maxAgeHours = config.server.signatures.maxAgeHours;
  const signedAt = opened.verification.signedAt?.getTime();
  if (signedAt === undefined || now.getTime() - signedAt > maxAgeHours * 3_600_000 || signedAt - now.getTime() > clockSkewMs) {
    return `Refused: the request's signature was made ${opened.verification.signedAt?.toISOString() ?? 'at an unknown time'}; advisory commands must be signed within ${maxAgeHours} hours.`;
  }
  const [action, advisoryId, dateText] = command.args;
  if (!advisoryId) return 'Usage: advisory postpone ID DATE | advisory cancel ID | advisory release ID';
  const parsed = parseControl(action, dateText);
  if ('error' in parsed) return `Refused: ${parsed.error}.`;
  if (earlierSignatureUse(services.db, digest, context.spoolId)) {
    services.logger.warn({ spoolId: context.spoolId, list: list.name, by: requester.address }, 'replayed advisory command refused');
    return 'Refused: this signed request was carried out before; a signed command acts once. Sign a new request.';
  }
  const actor = `${requester.address} (signed command ${context.spoolId})`;
  const outcome = services.db.transaction(() => {
    const result = applyControl(services.db, list.name, advisoryId, parsed, actor, now);
    // Recorded with the change itself; a second command in the same signed request finds its own spool id and may act.
    if (result.ok) acceptSignatureOnce(services.db, digest, { spoolId: context.spoolId, list: list.name, at: now.getTime() });
    return result;
  })();
  if (!outcome.ok) return `Refused: ${outcome.reason}.`;
  services.logger.info({ spoolId: context.spoolId, list: list.name, advisory: outcome.advisory.advisoryId, action: parsed.kind, by: requester.address }, 'advisory changed by signed command');
  context.outgoing.push(
    ...(await noticeToPosters(
      config,
      list,
      context.listKey,
      {
        subject: `${outcome.advisory.advisoryId}: ${parsed.kind === 'postpone' ? 'embargo moved' : parsed.kind === 'cancel' ? 'release cancelled' : 'release now'}`,
        lines: [outcome.summary, '', `Requested by ${requester.address} in a signed command.`, parsed.kind === 'release' ? 'It is published at the next release pass (within a minute).' : ''],
      },
      now,
    )),
  );
  return `Done: ${outcome.summary}.`;
}
