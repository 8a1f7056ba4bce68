// Mail to NAME-bounces+TOKEN@: has the bounce assessed and scored, and tells the admins when a member is suspended.
import { assessBounce } from '../bounce-assessment.ts';
import type { MessageContext } from '../context.ts';
import { adminAddresses, buildNotice } from '../notices.ts';
import type { RoleOutcome } from './outcome.ts';

export async function handleBounceAddress(context: MessageContext, token: string | undefined, secret: Buffer): Promise<RoleOutcome> {
  const { config, list, listKey, services } = context;
  if (!token) return { state: 'discarded', outcome: 'discard', reason: 'bounces: no VERP token' };
  const now = services.now();
  // The score is written by the worker's commit, in the same transaction as the notice below and the spool row's
  // state: a crash before it leaves the bounce uncounted, and the retry counts it and tells the admins then.
  const { outcome: result, record } = assessBounce(services.db, { list: list.name, token, raw: context.raw, secret, now: now.getTime() });
  if (record) context.effects.push(record);
  if (result.action === 'discard') return { state: 'discarded', outcome: 'discard', reason: `bounces: ${result.reason}` };
  if (result.action === 'ignore') return { state: 'done', outcome: 'done', reason: `bounces: ${result.reason}` };
  if (result.notifyAdmins) {
    context.outgoing.push(
      ...(await buildNotice(config, list, listKey, {
        to: adminAddresses(config, list),
        subject: `${list.name}: delivery to ${result.address} suspended after bounces`,
        text: [
          `Delivery of ${list.address} to ${result.address} is suspended: its bounce score reached ${result.score.toFixed(1)} (threshold ${result.threshold}).`,
          '',
          `Last status: ${result.status ?? 'unknown'}`,
          `Last reply:  ${(result.diagnostic ?? 'none').slice(0, 300)}`,
          '',
          'Fix the address or its mail server, then re-enable delivery with the embargo CLI.',
        ].join('\n'),
        sensitive: false,
        encryptWhenPossible: true,
        autoSubmitted: 'auto-generated',
      }, now)),
    );
  }
  return { state: 'done', outcome: 'done', reason: `bounces: ${result.kind} for a member, score ${result.score.toFixed(1)}` };
}
