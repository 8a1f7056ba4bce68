// How a queue row's state reads in an advisory's audit trail.
import type { OutboundState } from '../smtp/outbound.ts';
import type { DeliveryState } from './store.ts';

export function auditStateOf(state: OutboundState): DeliveryState {
  switch (state) {
    case 'queued':
    case 'sending':
      return 'queued';
    case 'deferred':
      return 'deferred';
    case 'sent':
      return 'delivered';
    case 'failed':
    case 'expired':
    case 'suspended':
      return 'failed';
  }
}
