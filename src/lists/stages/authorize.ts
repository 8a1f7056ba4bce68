// Stage authorize: who may post to which kind of list; inside the membership nobody speaks for anybody else.
import { proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { memberKey } from '../keyring.ts';

export async function authorize(context: MessageContext): Promise<StageResult> {
  const { list, from, signer } = context;
  if (!from) return reject(list.kind === 'public' ? 'no-sender' : 'not-authorized', 'no From address');
  const fromMember = list.members.find((member) => member.address === from.address);
  if (list.kind === 'public') {
    context.poster = fromMember ?? null;
    return proceed;
  }
  if (!fromMember) return reject('not-authorized', `From ${from.address} is not a member`);
  if (!signer) return reject('not-authorized', 'no member signature');
  if (signer.address !== fromMember.address) {
    // One key may be registered for two entries of the same organisation; then it speaks for both.
    const [signerKey, fromKey] = await Promise.all([memberKey(signer), memberKey(fromMember)]);
    if (!signerKey || !fromKey || signerKey.fingerprint !== fromKey.fingerprint) {
      return reject('not-authorized', `signed by the key of member ${signer.address} but From member ${fromMember.address}`);
    }
  }
  if (list.kind === 'announce' && !fromMember.roles.includes('poster')) {
    return reject('not-authorized', `member ${fromMember.address} does not have the poster role`);
  }
  context.poster = fromMember;
  return proceed;
}
