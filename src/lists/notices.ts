// Mail the list writes itself (bounces, notices to admins and moderators, replies): signed by the list, encrypted where it can be.
import { randomBytes } from 'node:crypto';
import * as crypto from '../crypto/index.ts';
import type { ListKey } from '../crypto/index.ts';
import type { Config, ListConfig, Member } from '../config/types.ts';
import type { OutgoingMail } from './context.ts';
import type { HeaderList } from './headers.ts';
import { keyUsability } from './keyring.ts';
import { mixedEntity, textEntity } from './mime.ts';
import { listAddressFor } from './addresses.ts';
import { listHeaders, subjectHeader } from './outgoing-headers.ts';
import { quoteDisplayName } from './headers.ts';

export interface Notice {
  to: string[];
  subject: string;
  text: string;
  /**
   * Whole MIME entities attached after the text (an original, a held post, a key). A function is called only if some
   * recipient gets them: an original of a sensitive notice is not encoded for admins who would get the withheld text.
   */
  attachments?: Buffer[] | (() => Buffer[]);
  /**
   * Carries list content (a held post, a rejected original, an archived message): sent only encrypted. Recipients
   * without a usable key get `withheldText` instead, signed but in clear, with no attachment.
   */
  sensitive: boolean;
  withheldText?: string;
  /** Encrypt even when not sensitive, for recipients with a usable key (notices to members of private lists). */
  encryptWhenPossible?: boolean;
  /** Which list address speaks: -owner for bounces and notices, -request for command replies. */
  fromRole?: 'owner' | 'request' | 'post';
  replyToRole?: 'request' | 'owner';
  inReplyTo?: string | null;
  /** RFC 3834: auto-replied for answers to a sender, auto-generated for notices nobody asked for. */
  autoSubmitted: 'auto-replied' | 'auto-generated';
}

/** Server admins plus the list's members with role admin, lower-cased, without repeats. */
export function adminAddresses(config: Config, list: ListConfig): string[] {
  const addresses = [
    ...config.server.admins.map((address) => address.toLowerCase()),
    ...list.members.filter((member) => member.roles.includes('admin')).map((member) => member.address),
  ];
  return [...new Set(addresses)];
}

/** The list's moderators; the admins stand in when the list names none. */
export function moderatorAddresses(config: Config, list: ListConfig): string[] {
  const moderators = list.members.filter((member) => member.roles.includes('moderator')).map((member) => member.address);
  return moderators.length > 0 ? [...new Set(moderators)] : adminAddresses(config, list);
}

function memberFor(config: Config, list: ListConfig, address: string): Member | undefined {
  const own = list.members.find((member) => member.address === address);
  if (own?.armoredKey) return own;
  // A server admin is often a member (with a key) of some list; use that key for notices about any list.
  for (const other of config.lists.values()) {
    const found = other.members.find((member) => member.address === address && member.armoredKey);
    if (found) return found;
  }
  return own;
}

function newMessageId(config: Config): string {
  return `${Date.now().toString(36)}.${randomBytes(8).toString('hex')}@${config.server.domain}`;
}

/** Builds one signed (and, where possible, encrypted) copy per recipient; returns batches for enqueueOutgoing. */
export async function buildNotice(
  config: Config,
  list: ListConfig,
  listKey: ListKey,
  notice: Notice,
  now: Date,
): Promise<OutgoingMail[]> {
  const batches: OutgoingMail[] = [];
  let attachments: Buffer[] | null = Array.isArray(notice.attachments) ? notice.attachments : null;
  const attached = (): Buffer[] => {
    attachments ??= typeof notice.attachments === 'function' ? notice.attachments() : [];
    return attachments;
  };
  const from = `${quoteDisplayName(`${list.name} list`)} <${listAddressFor(list, notice.fromRole ?? 'owner', config.server.domain)}>`;
  for (const recipient of [...new Set(notice.to.map((address) => address.toLowerCase()))]) {
    const messageId = newMessageId(config);
    const base: HeaderList = [
      ['From', from],
      ['To', recipient],
      ['Date', now.toUTCString().replace('GMT', '+0000')],
      ['Message-ID', `<${messageId}>`],
    ];
    if (notice.replyToRole) base.push(['Reply-To', listAddressFor(list, notice.replyToRole, config.server.domain)]);
    if (notice.inReplyTo) base.push(['In-Reply-To', `<${notice.inReplyTo}>`], ['References', `<${notice.inReplyTo}>`]);
    const trailer: HeaderList = [
      ['Auto-Submitted', notice.autoSubmitted],
      ['X-Loop', list.address],
      ['Precedence', 'list'],
      ...listHeaders(config, list).filter(([name]) => name === 'List-Id' || name === 'List-Help' || name === 'List-Owner'),
    ];
    const member = memberFor(config, list, recipient);
    const usability = member && (notice.sensitive || notice.encryptWhenPossible) ? await keyUsability(member, now) : null;
    if (usability?.usable) {
      const content = attached().length > 0 ? mixedEntity([textEntity(notice.text), ...attached()]) : textEntity(notice.text);
      const sealed = await crypto.sealFanout({
        listKey,
        content,
        protectedHeaders: [...base, subjectHeader(notice.subject)],
        note: '',
        outerHeaders: [...base, ...trailer],
        recipients: [{ address: recipient, key: usability.key }],
      });
      batches.push({
        payload: sealed.payload,
        copies: sealed.copies.map((copy) => ({ recipient: copy.address, head: copy.head, tail: copy.tail, messageId })),
      });
      continue;
    }
    const text = notice.sensitive ? (notice.withheldText ?? withheldDefault(list)) : notice.text;
    const content = !notice.sensitive && attached().length > 0 ? mixedEntity([textEntity(text), ...attached()]) : textEntity(text);
    const signed = await crypto.signMime({ listKey, content, headers: [...base, subjectHeader(notice.subject), ...trailer] });
    batches.push({ payload: null, copies: [{ recipient, head: signed, messageId }] });
  }
  return batches;
}

function withheldDefault(list: ListConfig): string {
  return [
    `This notice about the list ${list.address} carried list content, which is only ever sent encrypted.`,
    'No usable OpenPGP key is configured for your address, so the details were left out.',
    'Use the embargo CLI on the server (embargo held, embargo queue) or have a key added to the configuration.',
  ].join('\n');
}
