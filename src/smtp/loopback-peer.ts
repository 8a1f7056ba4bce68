// The smtp-server settings of a peer on loopback that takes every message: the development sink (`embargo sink`) and the start-up rehearsal's.
import type { SMTPServerOptions } from 'smtp-server';

/** No AUTH or STARTTLS (nothing leaves the machine), no reverse lookup of 127.0.0.1, no smtp-server log lines. */
export const loopbackPeerOptions = {
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  hideSTARTTLS: true,
  disableReverseLookup: true,
  logger: false,
} satisfies SMTPServerOptions;
