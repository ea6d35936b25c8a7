// Installs code-server 4.100.3 into a cache folder outside the repository (offline-safe: only the
// npm registry and Debian's ripgrep), following docs/real-vscode-tests.md. Used by run.mjs.
//   node test/integration/codeServer.mjs   -> prints the path of the code-server binary
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

export const CODE_SERVER_VERSION = '4.100.3';

/** Folder holding the local code-server install (TASKLING_CODE_SERVER_DIR overrides). */
export function codeServerDir() {
  return process.env.TASKLING_CODE_SERVER_DIR
    || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'taskling', `code-server-${CODE_SERVER_VERSION}`);
}

/** Path of the code-server launcher inside the install. */
export function codeServerBin() {
  return join(codeServerDir(), 'node_modules', 'code-server', 'out', 'node', 'entry.js');
}

/**
 * Installs code-server when missing; returns the entry script path (run it with `node`).
 * @throws Error when ripgrep is missing or npm fails.
 */
export function ensureCodeServer(log = (s) => process.stderr.write(s + '\n')) {
  const bin = codeServerBin();
  if (existsSync(bin)) return bin;
  const dir = codeServerDir();
  mkdirSync(dir, { recursive: true });
  if (!existsSync('/usr/bin/rg')) throw new Error('ripgrep is missing: apt-get install -y ripgrep');
  // @vscode/ripgrep 1.15.11 looks for a cached archive before downloading from GitHub.
  const tmp = process.env.TMPDIR || tmpdir();
  const cache = join(tmp, 'vscode-ripgrep-cache-1.15.11');
  mkdirSync(cache, { recursive: true });
  const archive = join(cache, 'ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz');
  if (!existsSync(archive)) spawnSync('tar', ['czf', archive, '-C', '/usr/bin', 'rg'], { stdio: 'inherit' });
  if (!existsSync(join(dir, 'package.json'))) writeFileSync(join(dir, 'package.json'), '{"name":"taskling-code-server","private":true}\n');
  log(`installing code-server ${CODE_SERVER_VERSION} into ${dir} (a few minutes the first time)`);
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `code-server@${CODE_SERVER_VERSION}`], {
    cwd: dir, stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, npm_config_unsafe_perm: 'true', npm_config_yes: 'true', npm_config_nodedir: '/usr', TMPDIR: tmp },
  });
  if (r.status !== 0 || !existsSync(bin)) throw new Error(`npm install code-server@${CODE_SERVER_VERSION} failed (exit ${r.status})`);
  return bin;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(ensureCodeServer());
