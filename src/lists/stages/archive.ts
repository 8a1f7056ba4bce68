// Stage archive: files the clean copy (private lists: encrypted to the list's archive key) with the spool row's commit.
import { insertArchiveEntry, prepareArchiveEntry } from '../../archive/store.ts';
import { proceed } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { formatHeaders, splitMessage } from '../headers.ts';
import type { HeaderList } from '../headers.ts';

export async function archive(context: MessageContext): Promise<StageResult> {
  const { clean, list } = context;
  if (!clean) throw new Error('archive ran before build-clean-copy');
  const entry = await prepareArchiveEntry({
    list,
    listKey: context.listKey,
    message: archiveCopy(context),
    receivedAt: context.receivedAt,
    spoolId: context.spoolId,
    // Releases are the advisories' business (track-advisory), decided by signed content only; the archive never publishes.
    embargoUntil: null,
  });
  context.effects.push(() => {
    insertArchiveEntry(context.services.db, entry);
  });
  return proceed;
}

/** The plaintext message the archive keeps: the poster's own From (not the rewritten one), the real Subject, the content. */
export function archiveCopy(context: MessageContext): Buffer {
  const { clean, from } = context;
  if (!clean) throw new Error('archive copy before build-clean-copy');
  const headers: HeaderList = clean.protectedHeaders.filter(([name]) => name.toLowerCase() !== 'from' && name.toLowerCase() !== 'reply-to');
  headers.unshift(['From', from ? (from.name ? `"${from.name.replace(/["\\\r\n]/g, '')}" <${from.address}>` : from.address) : context.list.address]);
  headers.push(...clean.outerHeaders.filter(([name]) => name.toLowerCase().startsWith('list-id')));
  headers.push(['MIME-Version', '1.0']);
  // Only the entity's Content-* fields join the message header block; its other fields are already above.
  const entity = splitMessage(clean.content);
  const contentHeaders = entity.headers.filter(([name]) => name.toLowerCase().startsWith('content-'));
  return Buffer.concat([Buffer.from(formatHeaders([...headers, ...contentHeaders]) + '\r\n'), entity.body]);
}
