// The source a worker thread evals to load its body: the compiled .js directly, or (run from TypeScript sources) through tsx.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * `caller` is the caller's import.meta.url and `body` the thread module's name without extension, beside it.
 * Compiled (dist/*.js), the thread imports its body directly. Run from sources (tests, bench) it registers tsx first,
 * since worker threads do not inherit the loader; tsx is a dev dependency and never loaded in production. A thread
 * that cannot load its body posts `{ type: 'fatal', message }` and closes.
 */
export function threadBootstrap(caller: string, body: string): string {
  const fromSources = caller.endsWith('.ts');
  const threadModule = new URL(`./${body}${fromSources ? '.ts' : '.js'}`, caller).href;
  const reportFailure = `.catch(async (error) => {
    const { parentPort } = await import('node:worker_threads');
    parentPort.postMessage({ type: 'fatal', message: String((error && error.stack) || error) });
    parentPort.close();
  });`;
  if (!fromSources) return `import(${JSON.stringify(threadModule)})${reportFailure}`;
  const tsxApi = pathToFileURL(join(dirname(createRequire(caller).resolve('tsx/esm/api')), 'index.mjs')).href;
  return `import(${JSON.stringify(tsxApi)})
  .then((api) => { api.register(); return import(${JSON.stringify(threadModule)}); })
  ${reportFailure}`;
}
