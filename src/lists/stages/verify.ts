// Stage verify: on private lists a post counts only with a valid signature by a member's registered key.
import type { Member } from '../../config/types.ts';
import { proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { memberKey } from '../keyring.ts';

export async function verify(context: MessageContext): Promise<StageResult> {
  const verification = context.opened?.verification;
  if (!verification) throw new Error('verify ran before decrypt');
  // An inline signature over one text part, with an unsigned HTML twin or attachments beside it, would lend its
  // good name to content nobody signed: such a post confirms no sender (public lists) and is refused (private).
  const partial = context.opened?.signatureCovers === 'part';
  const signer = verification.signed && verification.valid && !partial ? await signingMember(context, verification.memberAddress, verification.signingFingerprint) : undefined;
  if (signer) context.signer = signer;
  if (context.list.kind === 'public') return proceed;
  if (!verification.signed) return reject('unsigned', 'no OpenPGP signature');
  if (!verification.valid) return reject('bad-signature', verification.reason ?? 'signature not valid');
  if (partial) return reject('bad-signature', 'the inline signature covers one text part only; the other parts (an HTML alternative, attachments) are unsigned');
  if (!signer) {
    return reject('bad-signature', `valid signature by ${verification.signingFingerprint ?? verification.signingKeyId ?? 'an unknown key'}, which is no member's registered key`);
  }
  return proceed;
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
