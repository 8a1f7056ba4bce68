// Start-up self-test of a list key: a small post through every OpenPGP step a real one takes, so a broken key shows at start and the first post runs on warm code.
import type { ListKey, MemberKey, Recipient } from './index.ts';
import { parseMemberKey } from './member-keys.ts';
import { openMessage } from './open.ts';
import { errorMessage } from '../util/errors.ts';
import { decryptFromArchive, encryptForArchive } from './archive-encryption.ts';
import { assembleCopy, sealFanout } from './fanout.ts';

export type SelfTestResult = { ok: true } | { ok: false; detail: string };

/**
 * Seals a 4 KiB message to `recipients` and to the list itself, opens the list's own copy (decrypt, verify the list's
 * signature, parse the MIME), and round-trips an archive entry. Nothing is sent or stored.
 */
export async function selfTestListKey(listKey: ListKey, address: string, recipients: Recipient[]): Promise<SelfTestResult> {
  try {
    const own: MemberKey = await parseMemberKey(listKey.armoredPublicKey);
    const content = Buffer.from(`Content-Type: text/plain; charset=us-ascii\r\n\r\n${'self-test line of a list key check\r\n'.repeat(120)}`);
    const fanout = await sealFanout({
      listKey,
      content,
      protectedHeaders: [['Subject', 'self-test']],
      note: 'self-test',
      outerHeaders: [['From', address], ['To', address], ['Subject', 'self-test']],
      recipients: [{ address, key: own }, ...recipients],
    });
    const opened = await openMessage(assembleCopy(fanout, fanout.copies[0]), { listKey, members: [{ address, key: own }] });
    if (!opened.ok) return { ok: false, detail: `the list's own copy does not open: ${opened.failure.code}` };
    if (!opened.message.verification.valid) return { ok: false, detail: "the list's own signature does not verify" };
    const archived = await decryptFromArchive(listKey, await encryptForArchive(listKey, content));
    if (!archived.equals(content)) return { ok: false, detail: 'an archive entry does not decrypt to what was stored' };
    return { ok: true };
  } catch (error) {
    return { ok: false, detail: errorMessage(error) };
  }
}
