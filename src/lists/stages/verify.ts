// Stage verify: on private lists a post counts only with a valid signature by a member's registered key.
import type { Member } from '../../config/types.ts';
import type { AttachmentCheck } from '../../crypto/index.ts';
import { proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { memberKey } from '../keyring.ts';

export async function verify(context: MessageContext): Promise<StageResult> {
  const opened = context.opened;
  const verification = opened?.verification;
  if (!opened || !verification) throw new Error('verify ran before decrypt');
  // An inline signature over one text part, with an unsigned HTML twin or attachments beside it, would lend its
  // good name to content nobody signed: such a post confirms no sender (public lists) and is refused (private).
  const partial = opened.signatureCovers === 'part';
  const signer = verification.signed && verification.valid && !partial ? await signingMember(context, verification.memberAddress, verification.signingFingerprint) : undefined;
  if (signer) context.signer = signer;
  if (context.list.kind === 'public') return proceed;
  if (!verification.signed) return reject('unsigned', 'no OpenPGP signature');
  // Coverage is a property of the post alone, checked before whose key signed it: a member and a stranger who send
  // the same uncovered attachment hear the same thing, so the answer says nothing about membership.
  if (partial) return uncoveredParts(opened.attachments ?? []);
  if (!verification.valid) return reject('bad-signature', verification.reason ?? 'signature not valid');
  if (!signer) {
    return reject('bad-signature', `valid signature by ${verification.signingFingerprint ?? verification.signingKeyId ?? 'an unknown key'}, which is no member's registered key`);
  }
  return proceed;
}

/** The refusal for a post whose signature leaves parts out; attachments are named by position and digest, never by file name (bounces travel in clear). */
function uncoveredParts(attachments: AttachmentCheck[]): StageResult {
  const missing = attachments.filter((attachment) => !attachment.covered);
  if (missing.length === 0) {
    return reject('uncovered-attachment', 'the inline signature covers one text part only; the other parts (an HTML alternative, text outside the signed block) are unsigned');
  }
  const describe = (attachment: AttachmentCheck) => `attachment ${attachment.position} of ${attachments.length} (${attachment.size} bytes, SHA-256 ${attachment.sha256})`;
  return reject(
    'uncovered-attachment',
    `no digest in the signed text for ${missing.map(describe).join(', ')}`,
    `Not covered: ${missing.map(describe).join('; ')}.`,
  );
}

/** The member whose registered key made the signature: crypto names it; a fingerprint match is the fallback. */
async function signingMember(context: MessageContext, memberAddress: string | undefined, fingerprint: string | undefined): Promise<Member | undefined> {
  const members = context.list.members;
  if (memberAddress) {
    const named = members.find((member) => member.address === memberAddress.toLowerCase());
    if (named) return named;
  }
  if (!fingerprint) return undefined;
  for (const member of members) {
    const key = await memberKey(member);
    if (key && key.fingerprint.toUpperCase() === fingerprint.toUpperCase()) return member;
  }
  return undefined;
}
