// Confirmations to an announce list's posters when an advisory's schedule changes: signed, and encrypted to each of them.
import type { Config, ListConfig } from '../config/types.ts';
import type { ListKey } from '../crypto/index.ts';
import type { OutgoingMail } from '../lists/context.ts';
import { adminAddresses, buildNotice } from '../lists/notices.ts';

/** The list's posters (the team); the admins stand in when a list has none. */
export function posterAddresses(config: Config, list: ListConfig): string[] {
  const posters = list.members.filter((member) => member.roles.includes('poster')).map((member) => member.address);
  return posters.length > 0 ? [...new Set(posters)] : adminAddresses(config, list);
}

/** Advisory ids and dates are embargoed information: posters without a usable key get a pointer, not the details. */
export function noticeToPosters(
  config: Config,
  list: ListConfig,
  listKey: ListKey,
  notice: { subject: string; lines: string[]; inReplyTo?: string | null },
  now: Date,
): Promise<OutgoingMail[]> {
  return buildNotice(
    config,
    list,
    listKey,
    {
      to: posterAddresses(config, list),
      subject: notice.subject,
      text: notice.lines.join('\n'),
      sensitive: true,
      withheldText: `An advisory on ${list.address} changed. No usable OpenPGP key is configured for you, so the details were left out; run "embargo advisories" on the server.`,
      fromRole: 'request',
      replyToRole: 'request',
      inReplyTo: notice.inReplyTo ?? null,
      autoSubmitted: 'auto-generated',
    },
    now,
  );
}

export function describeDate(date: Date | null): string {
  return date ? date.toISOString().replace('.000Z', 'Z') : '(no date)';
}
