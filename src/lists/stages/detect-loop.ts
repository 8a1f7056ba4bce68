// Stage detect-loop: mail that must never be redistributed — our own copies coming back, bounces, auto-replies.
import { discard, proceed } from '../context.ts';
import type { MessageContext, StageResult } from '../context.ts';
import { headerValue, headerValues } from '../headers.ts';
import { listIdOf } from '../outgoing-headers.ts';

export function detectLoop(context: MessageContext): StageResult {
  const { headers } = context.outer;
  const { list, config } = context;
  const ownListId = listIdOf(list, config.server.domain).toLowerCase();
  // Our List-Id or X-Loop on incoming mail means a copy we sent came back through someone's forwarder.
  for (const value of headerValues(headers, 'List-Id')) {
    if (value.toLowerCase().includes(ownListId)) return discard('loop: carries this list\'s List-Id');
  }
  for (const value of headerValues(headers, 'X-Loop')) {
    if (value.toLowerCase().includes(list.address.toLowerCase())) return discard('loop: carries this list\'s X-Loop');
  }
  if (context.envelopeFrom === '') return discard('bounce: empty return path');
  const autoSubmitted = headerValue(headers, 'Auto-Submitted')?.trim().toLowerCase();
  // RFC 3834: anything but "no" is machine-generated and must not reach the members.
  if (autoSubmitted && !autoSubmitted.startsWith('no')) return discard(`auto-reply: Auto-Submitted ${autoSubmitted.split(/[\s;]/)[0]}`);
  const precedence = headerValue(headers, 'Precedence')?.trim().toLowerCase();
  if (precedence && ['bulk', 'junk', 'list', 'auto_reply'].includes(precedence)) return discard(`auto-reply: Precedence ${precedence}`);
  if (headerValue(headers, 'X-Autoreply') || headerValue(headers, 'X-Autorespond')) return discard('auto-reply: X-Autoreply');
  const contentType = headerValue(headers, 'Content-Type')?.toLowerCase() ?? '';
  if (contentType.startsWith('multipart/report')) return discard('bounce: delivery report');
  const envelopeLocal = context.envelopeFrom.split('@')[0]?.toLowerCase() ?? '';
  if (/^mailer-daemon$/.test(envelopeLocal)) return discard('bounce: from a mailer daemon');
  return proceed;
}
