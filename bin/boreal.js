#!/usr/bin/env node
// The `boreal` command: runs the compiled CLI (built by `npm ci` through the prepare script).
import('../dist/src/cli/main.js').then(
  (cli) => cli.main(process.argv.slice(2)),
  (error) => {
    console.error(`boreal: cannot load the compiled CLI (${error.message}); run npm ci or npm run build`);
    process.exit(1);
  },
);
