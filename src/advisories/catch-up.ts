// Sends an advisory's newest revision to members who have not had it: added later, key fixed since, or an admin's resend.
import type { Config, ListConfig, Member } from '../config/types.ts';
import * as crypto from '../crypto/index.ts';
import type { ListKey } from '../crypto/index.ts';
import { describeProblems, keyUsability } from '../lists/keyring.ts';
import { enqueueOutgoing } from '../queues/outbound.ts';
import type { Db } from '../store/database.ts';
import type { Logger } from '../util/log.ts';
import { openRevision } from './content.ts';
import { findAdvisory, getRevision, listAdvisories, recordDelivery, revisionRecipients, type Advisory, type DeliveryCause } from './store.ts';

export interface SendOutcome {
  queued: string[];
  withheld: Array<{ address: string; reason: string }>;
}

/**
 * Seals the advisory's newest revision for these members (one payload, one session-key packet each), queues the
 * copies and writes their audit rows in one transaction. Members without a usable key get an audit row saying why,
 * once per revision. Nothing is sent when the advisory changed revision meanwhile (the pipeline sends that one).
 */
export async function sendRevision(
  db: Db,
  list: ListConfig,
  listKey: ListKey,
  advisory: Advisory,
  members: Member[],
  cause: DeliveryCause,
  now: Date,
): Promise<SendOutcome> {
  const outcome: SendOutcome = { queued: [], withheld: [] };
  const revisionRow = getRevision(db, advisory.rowId, advisory.revision);
  if (!revisionRow || members.length === 0) return outcome;
  const { withheld: alreadyWithheld } = revisionRecipients(db, advisory.rowId, advisory.revision);
  const usable: Array<{ member: Member; key: crypto.MemberKey; encryptedTo: string }> = [];
  const unusable: Array<{ member: Member; reason: string }> = [];
  for (const member of members) {
    const usability = await keyUsability(member, now);
    if (usability.usable) usable.push({ member, key: usability.key, encryptedTo: await crypto.encryptionKeyFingerprint(usability.key, now) });
    else unusable.push({ member, reason: describeProblems(usability.problems) });
  }
  const content = usable.length > 0 ? await openRevision(listKey, revisionRow.sealed) : null;
  const sealed = content
    ? await crypto.sealFanout({
        listKey,
        content: content.copy.content,
        protectedHeaders: content.copy.protectedHeaders,
        note: content.copy.note,
        outerHeaders: content.copy.outerHeaders,
        recipients: usable.map(({ member, key }) => ({ address: member.address, key })),
      })
    : null;
  db.transaction(() => {
    const current = findAdvisory(db, advisory.list, advisory.advisoryId);
    if (!current || current.revision !== advisory.revision) return;
    if (sealed && content) {
      const ids = enqueueOutgoing(
        db,
        {
          spoolId: revisionRow.spoolId,
          list: list.name,
          payload: sealed.payload,
          copies: sealed.copies.map((copy) => ({ recipient: copy.address, head: copy.head, tail: copy.tail, messageId: content.copy.messageId })),
        },
        now.getTime(),
      );
      sealed.copies.forEach((copy, index) => {
        const target = usable.find(({ member }) => member.address === copy.address)!;
        recordDelivery(db, {
          advisoryRowId: advisory.rowId,
          revision: advisory.revision,
          address: copy.address,
          organisation: target.member.organisation ?? null,
          fingerprint: target.key.fingerprint,
          encryptedTo: target.encryptedTo,
          cause,
          outboundId: ids[index] ?? null,
          state: 'queued',
          detail: null,
          queuedAt: now,
        }, now);
        outcome.queued.push(copy.address);
      });
    }
    for (const { member, reason } of unusable) {
      outcome.withheld.push({ address: member.address, reason });
      if (alreadyWithheld.has(member.address) && cause !== 'resend') continue;
      recordDelivery(db, {
        advisoryRowId: advisory.rowId,
        revision: advisory.revision,
        address: member.address,
        organisation: member.organisation ?? null,
        fingerprint: null,
        encryptedTo: null,
        cause,
        outboundId: null,
        state: 'withheld',
        detail: reason,
        queuedAt: null,
      }, now);
    }
  })();
  return outcome;
}

/**
 * Every announce list's advisories still under embargo, sent to each recipient member who has no copy of the newest
 * revision yet: members added by a config change, and withheld members whose key has become usable.
 */
export async function catchUp(
  db: Db,
  config: Config,
  listKeys: (name: string) => ListKey | undefined | Promise<ListKey | undefined>,
  now: Date,
  logger?: Logger,
): Promise<number> {
  let queued = 0;
  for (const list of config.lists.values()) {
    if (list.kind !== 'announce') continue;
    const open = listAdvisories(db, { list: list.name, states: ['embargoed', 'no-date'] });
    if (open.length === 0) continue;
    const listKey = await listKeys(list.name);
    if (!listKey) continue;
    for (const advisory of open) {
      const { sent, withheld } = revisionRecipients(db, advisory.rowId, advisory.revision);
      const missing = list.members.filter((member) => member.roles.includes('recipient') && !sent.has(member.address));
      if (missing.length === 0) continue;
      // A member withheld for a key problem is only tried again once the key is usable (no repeated withheld rows).
      const candidates: Member[] = [];
      for (const member of missing) {
        if (withheld.has(member.address) && !(await keyUsability(member, now)).usable) continue;
        candidates.push(member);
      }
      if (candidates.length === 0) continue;
      const outcome = await sendRevision(db, list, listKey, advisory, candidates, 'catch-up', now);
      queued += outcome.queued.length;
      if (outcome.queued.length > 0 || outcome.withheld.length > 0) {
        logger?.info(
          { list: list.name, advisory: advisory.advisoryId, revision: advisory.revision, queued: outcome.queued, withheld: outcome.withheld.map((entry) => entry.address) },
          'advisory catch-up for members without the newest revision',
        );
      }
    }
  }
  return queued;
}
