// Stage bind-signature: a valid signature counts only while fresh and only for the lists it names in its signed To/Cc.
import { SIGNATURE_CLOCK_SKEW_MS } from '../../crypto/index.ts';
import { proceed, reject } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { signedRecipients } from '../signed-headers.ts';

/**
 * Checked before authorize, from the signature alone, so the answer is the same whether or not the signer is a
 * member. Measured against the arrival time: a post held for moderation does not age out while it waits.
 */
export function bindSignature(context: MessageContext): StageResult {
  const verification = context.opened?.verification;
  if (!verification?.valid) return proceed;
  const misuse = misuseOf(context);
  if (!misuse) return proceed;
  if (context.list.kind === 'public') {
    // A public list takes the post anyway, but nobody is confirmed by a signature made for another time or list.
    context.signatureMisuse = misuse.detail;
    delete context.signer;
    return proceed;
  }
  return reject(misuse.code, misuse.detail);
}

function misuseOf(context: MessageContext): { code: 'stale-signature' | 'not-for-this-list'; detail: string } | null {
  const signedAt = context.opened?.verification.signedAt;
  const received = context.receivedAt.getTime();
  const maxAgeHours = context.config.server.signatures.maxAgeHours;
  if (signedAt && signedAt.getTime() < received - maxAgeHours * 3_600_000) {
    return { code: 'stale-signature', detail: `signed ${signedAt.toISOString()}, more than ${maxAgeHours} hours before it arrived` };
  }
  if (signedAt && signedAt.getTime() > received + SIGNATURE_CLOCK_SKEW_MS) {
    return { code: 'stale-signature', detail: `signed ${signedAt.toISOString()}, later than its arrival (${context.receivedAt.toISOString()})` };
  }
  const recipients = signedRecipients(context);
  if (recipients && !recipients.includes(context.list.address.toLowerCase())) {
    return { code: 'not-for-this-list', detail: `the signed To/Cc do not name ${context.list.address}` };
  }
  return null;
}
