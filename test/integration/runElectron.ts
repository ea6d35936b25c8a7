/**
 * Runs the same mocha suite (test/integration/suite) with @vscode/test-electron, which downloads
 * a VS Code build: for developer machines with internet (not used on the offline CI, which runs
 * test/integration/run.mjs with code-server instead).
 *
 *   npx tsc -p tsconfig.json && node out/test/integration/runElectron.js
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { runTests } from '@vscode/test-electron';

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..', '..', '..');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'taskling-electron-'));
  const ws = path.join(scratch, 'workspace');
  const userData = path.join(scratch, 'user-data');
  fs.mkdirSync(path.join(ws, '.taskling', 'adapters'), { recursive: true });
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify({
    'taskling.modelPath': path.join(root, 'models', 'test', 'gemma3-tiny'),
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
  }));
  fs.writeFileSync(path.join(ws, 'sample.txt'), 'Contact: Dana Whitfield, dana@example.org, +1 555 0100.\nI really love this product, it works great!\n');
  fs.writeFileSync(path.join(ws, '.taskling', 'adapters', 'test-flag.taskling.json'), JSON.stringify({
    id: 'test-flag', name: 'Test flag', version: '1.0.0', task: 'toJson',
    instruction: 'Say whether the text mentions a person.',
    schema: { type: 'object', properties: { person: { type: 'boolean' } }, required: ['person'], additionalProperties: false },
    generation: { maxNewTokens: 16 },
  }));
  try {
    await runTests({
      version: '1.100.3',
      extensionDevelopmentPath: root,
      extensionTestsPath: path.join(root, 'out', 'test', 'integration', 'suite', 'index.js'),
      launchArgs: [ws, '--user-data-dir', userData, '--disable-extensions', '--disable-workspace-trust'],
    });
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
