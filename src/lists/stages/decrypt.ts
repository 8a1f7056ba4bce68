// Stage decrypt: opens the post with the list key (PGP/MIME, inline, Exchange-mangled) and checks its signature.
import * as crypto from '../../crypto/index.ts';
import { proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { splitMessage } from '../headers.ts';
import { signingMembers } from '../keyring.ts';

/** Opens the post in the calling thread (no pool, or the pool's threads still loading). */
export async function openInThisThread(context: MessageContext): Promise<crypto.OpenResult> {
  return crypto.openMessage(context.raw, { listKey: context.listKey, members: await signingMembers(context.list) });
}

export async function decrypt(context: MessageContext): Promise<StageResult> {
  const result = context.services.openPost ? await context.services.openPost(context) : await openInThisThread(context);
  if (!result.ok) {
    const { code, detail } = result.failure;
    if (code === 'replaced-list-key') return reject('old-list-key', `${code}: ${detail}`);
    if (code === 'not-for-this-key' || code === 'decrypt-failed') return reject('undecryptable', `${code}: ${detail}`);
    return reject('bad-input', `${code}: ${detail}`);
  }
  context.opened = result.message;
  context.inner = splitMessage(result.message.entity);
  // Private lists never carry plaintext over the wire: a post must arrive encrypted to the list key.
  if (context.list.kind !== 'public' && !result.message.encrypted) {
    return reject('not-encrypted', `format ${result.message.format}, not encrypted to the list key`);
  }
  return proceed;
}
