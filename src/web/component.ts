// Plugs the HTTP listener into the daemon: list keys cached for synchronous lookups, the subscribe form's requests spooled, port reported once listening.
import type { Component, DaemonContext } from '../component.ts';
import type { ListKey } from '../crypto/index.ts';
import { randomBytes } from 'node:crypto';
import type { ListConfig } from '../config/types.ts';
import { indexUnsearchedPublicEntries } from '../archive/store.ts';
import { createWebServer } from './server.ts';
import { errorMessage } from '../util/errors.ts';

/** NAME-request@DOMAIN, the address lists/addresses.ts gives the -request role (web/ may not import lists/). */
function requestAddress(list: ListConfig, domain: string): string {
  return `${list.name}-request@${domain}`;
}

/**
 * The web form's request as the mail it stands for: `subscribe` from the address to NAME-request@, spooled like
 * mail that arrived by SMTP, so the -request role runs the very same double opt-in (and its checks) on it.
 */
export function subscribeRequestMail(list: ListConfig, address: string, domain: string, now: Date): Buffer {
  const lines = [
    `From: <${address}>`,
    `To: <${requestAddress(list, domain)}>`,
    'Subject: subscribe',
    `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <web-subscribe-${randomBytes(12).toString('hex')}@${domain}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'subscribe',
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}

export async function createHttpComponent(context: DaemonContext): Promise<Component> {
  const keys = new Map<string, ListKey>();
  const load = async (name: string) => {
    try {
      keys.set(name, await context.listKey(name));
    } catch (error) {
      context.logger.error({ list: name, err: errorMessage(error) }, 'list key unavailable for the web');
    }
  };
  for (const name of context.config().lists.keys()) await load(name);
  // Lists added by a hot reload get their keys published as soon as they exist.
  context.onConfigReload((config) => {
    for (const name of config.lists.keys()) if (!keys.has(name)) void load(name);
  });
  const server = createWebServer({
    db: context.db,
    config: context.config,
    listKeys: (name) => keys.get(name),
    logger: context.logger.child({ component: 'http' }),
    requestSubscription(list, address, clientIp) {
      const domain = context.config().server.domain;
      const id = context.spool.insert({
        mailFrom: address,
        rcptTo: [requestAddress(list, domain)],
        remoteAddress: clientIp,
        helo: 'embargo-web-subscribe-form',
        raw: subscribeRequestMail(list, address, domain, new Date()),
      });
      // The address stays out of the log: the spool row has it for admins.
      context.logger.info({ spoolId: id, list: list.name }, 'web subscribe form request spooled');
    },
  });
  let started = false;
  return {
    name: 'http',
    async start() {
      if (!context.config().server.http.enabled) return;
      await server.start();
      started = true;
      // Entries archived before the search index kept its text get indexed again, off the start path.
      void indexUnsearchedPublicEntries(context.db).then(
        (count) => count > 0 && context.logger.info({ count }, 'public archive entries added to the search index'),
        (error: unknown) => context.logger.error({ err: errorMessage(error) }, 'search index backfill failed'),
      );
      context.reportListening('http', server.port());
    },
    async stop() {
      if (started) await server.stop();
      started = false;
    },
  };
}
