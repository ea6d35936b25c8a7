#!/usr/bin/env node
// Entry for `npx taskling`: runs the compiled CLI (see src/cli/main.ts).
require('../out/src/cli/main.js').main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(`taskling: ${err && err.message ? err.message : err}`); process.exitCode = 1; },
);
