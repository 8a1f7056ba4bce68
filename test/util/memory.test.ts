// collectGarbage really collects: an object nothing refers to is gone afterwards.
import { expect, it } from 'vitest';
import { collectGarbage } from '../../src/util/memory.ts';

it('frees an unreachable object at once, and can be called again', async () => {
  let reference: WeakRef<object> | null = null;
  (() => {
    reference = new WeakRef({ payload: Buffer.alloc(1024 * 1024) });
  })();
  // A WeakRef keeps its target for the rest of the job that created it; the collection comes in a later one.
  await new Promise((resolve) => setImmediate(resolve));
  collectGarbage();
  await new Promise((resolve) => setImmediate(resolve));
  expect(reference!.deref()).toBeUndefined();
  collectGarbage();
});
