// Plugs the embargo release schedule into the daemon; the pipeline may pass the callback that mails released advisories.
import type { Component, ComponentFactory, DaemonContext } from '../daemon.ts';
import type { ListKey } from '../crypto/index.ts';
import { createEmbargoRelease, type ReleasedAdvisory } from './release.ts';

export function embargoReleaseComponent(options: { onMailRelease?: (advisory: ReleasedAdvisory) => void | Promise<void> } = {}): ComponentFactory {
  return async (context: DaemonContext): Promise<Component> => {
    const keys = new Map<string, ListKey>();
    const loadAll = async () => {
      for (const name of context.config().lists.keys()) {
        if (keys.has(name)) continue;
        try {
          keys.set(name, await context.listKey(name));
        } catch (error) {
          context.logger.error({ list: name, err: error instanceof Error ? error.message : String(error) }, 'list key unavailable for embargo release');
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
      onMailRelease: options.onMailRelease,
    });
    return { name: 'embargo-release', start: () => release.start(), stop: () => release.stop() };
  };
}
