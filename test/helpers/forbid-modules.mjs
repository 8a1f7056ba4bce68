// Preloaded with `node --import`: importing a module whose URL contains a part of $EMBARGO_FORBID_MODULES (comma-separated) fails, so a test can show a command never loads it.
import { register } from 'node:module';

const hooks = `
const forbidden = ${JSON.stringify((process.env.EMBARGO_FORBID_MODULES ?? '').split(',').filter(Boolean))};
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  const hit = forbidden.find((part) => result.url.includes(part));
  if (hit) throw new Error('forbidden module loaded: ' + result.url);
  return result;
}
`;
register('data:text/javascript,' + encodeURIComponent(hooks));
