#!/usr/bin/env node
// The `embargo` command: runs the compiled CLI in dist/ (built from src/ by `npm install` through the prepare script).
let cli;
try {
  cli = await import('../dist/cli/main.js');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/cli/main.js')) throw error;
  process.stderr.write('embargo: dist/ is missing: run `npm install` (or `npm run build`) in the Embargo checkout first\n');
  process.exit(1);
}
await cli.main(process.argv);
