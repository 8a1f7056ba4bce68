// Plugs the HTTP listener into the daemon: list keys cached for synchronous lookups, port reported once listening.
import type { Component, DaemonContext } from '../component.ts';
import type { ListKey } from '../crypto/index.ts';
import { createWebServer } from './server.ts';
import { errorMessage } from '../util/errors.ts';

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
  });
  let started = false;
  return {
    name: 'http',
    async start() {
      if (!context.config().server.http.enabled) return;
      await server.start();
      started = true;
      context.reportListening('http', server.port());
    },
    async stop() {
      if (started) await server.stop();
      started = false;
    },
  };
}
