// Test runner settings: real daemons and real GnuPG are slow to start, so timeouts are generous and files run in a few forks.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests that spawn bin/embargo.js run the compiled dist/, as users do; this builds it when src/ changed.
    globalSetup: ['test/helpers/build-dist.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
