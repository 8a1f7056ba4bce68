// Mail to NAME-bounces+TOKEN@: hands the bounce to DELIVERY's scoring and tells the admins when a member is suspended.
import { handleBounce } from '../../smtp/bounces.ts';
import type { MessageContext } from '../context.ts';
import { adminAddresses, buildNotice } from '../notices.ts';
import type { RoleOutcome } from './outcome.ts';

export async function handleBounceAddress(context: MessageContext, token: string | undefined, secret: Buffer): Promise<RoleOutcome> {
  const { config, list, listKey, services } = context;
  if (!token) return { state: 'discarded', outcome: 'discard', reason: 'bounces: no VERP token' };
  const now = services.now();
  // Scored right away (the notice depends on it); a retry after a crash is a 'duplicate' for the same copy, not counted twice.
  const result = handleBounce(services.db, { list: list.name, token, raw: context.raw, secret, now: now.getTime() });
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
