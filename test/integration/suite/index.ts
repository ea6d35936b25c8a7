/**
 * Mocha entry for the integration suite, run inside a real VS Code extension host (code-server
 * via test/integration/run.mjs, or @vscode/test-electron via runElectron.ts). Exports `run()`.
 * Mocha's output goes through console.log with util.format (the web workbench forwards the
 * extension host's console to the page). A line `MOCHA_COUNTS {...}` carries the totals.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as util from 'node:util';
import Mocha from 'mocha';

export function run(): Promise<void> {
  (Mocha.reporters.Base as unknown as { consoleLog: (...a: unknown[]) => void }).consoleLog = (...a: unknown[]) => console.log(util.format(...a));
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 60_000, reporter: 'spec' });
  const grep = process.env.TASKLING_TEST_GREP;
  if (grep) mocha.grep(grep);
  const dir = __dirname;
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.test.js')).sort()) mocha.addFile(path.join(dir, f));
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      const s = runner.stats ?? { passes: 0, failures, pending: 0 };
      console.log(`MOCHA_COUNTS ${JSON.stringify({ passed: s.passes, failed: s.failures, skipped: s.pending })}`);
      if (failures > 0) reject(new Error(`${failures} integration tests failed`));
      else resolve();
    });
  });
}
