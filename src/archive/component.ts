// Plugs the embargo release schedule into the daemon; released advisories are mailed by posting them to the public list.
import type { Component, ComponentFactory, DaemonContext } from '../component.ts';
import type { ListKey } from '../crypto/index.ts';
import { createEmbargoRelease, type ReleasedAdvisory } from './release.ts';
import { errorMessage } from '../util/errors.ts';

/**
 * Mails a released advisory to its public list by spooling it as a post to that list, as if it had arrived by
 * SMTP: the list engine then signs and sends it to the subscribers like any post (and its archive stage finds
 * the advisory already archived). The envelope sender is the announce list's owner address, so anything the
 * public list refuses reaches the admins.
 */
export function releaseThroughSpool(context: DaemonContext): (advisory: ReleasedAdvisory) => void {
  return (advisory) => {
    const domain = context.config().server.domain;
    const id = context.spool.insert({
      mailFrom: `${advisory.sourceList}-owner@${domain}`,
      rcptTo: [`${advisory.targetList}@${domain}`],
      remoteAddress: null,
      helo: 'embargo-release',
      raw: advisory.message,
    });
    context.logger.info({ spoolId: id, list: advisory.targetList, entryId: advisory.entryId }, 'released advisory spooled for mailing');
  };
}

export function embargoReleaseComponent(
  options: { onMailRelease?: (advisory: ReleasedAdvisory) => void | Promise<void> } = {},
): ComponentFactory {
  return async (context: DaemonContext): Promise<Component> => {
    const keys = new Map<string, ListKey>();
    const loadAll = async () => {
      for (const name of context.config().lists.keys()) {
        if (keys.has(name)) continue;
        try {
          keys.set(name, await context.listKey(name));
        } catch (error) {
          context.logger.error({ list: name, err: errorMessage(error) }, 'list key unavailable for embargo release');
        }
      }
    };
    await loadAll();
    context.onConfigReload(() => void loadAll());
    const release = createEmbargoRelease({
      db: context.db,
      config: context.config,
      listKeys: (name) => keys.get(name),
      logger: context.logger.child({ component: 'embargo-release' }),
      onMailRelease: options.onMailRelease ?? releaseThroughSpool(context),
    });
    return { name: 'embargo-release', start: () => release.start(), stop: () => release.stop() };
  };
}
