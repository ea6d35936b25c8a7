/**
 * Where Taskling keeps files derived from a model folder (the tokenizer's compact form, the
 * model's remembered sha256) and how it writes them: beside the model when the folder is
 * writable, else in the user cache folder. Pure core: no vscode, no worker_threads.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * Default cache folder for files that cannot be written beside a read-only model:
 * `TASKLING_CACHE_DIR`, else the platform's user cache folder + `taskling` (`$XDG_CACHE_HOME` or
 * `~/.cache` on Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%\taskling\Cache` on Windows).
 */
export function defaultCacheDir(): string {
  const env = process.env.TASKLING_CACHE_DIR;
  if (env) return env;
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'taskling');
  if (process.platform === 'win32') return join(process.env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'), 'taskling', 'Cache');
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'taskling');
}

/**
 * Writes `bytes` to the first of `files` whose folder takes it (temporary file + rename, so a
 * reader never sees half a file; folders after the first are created when missing).
 * @returns the file written, or undefined with the reason each location failed (errno code).
 */
export function writeFirstWritable(files: string[], bytes: Uint8Array): { file?: string; problems: string[] } {
  const problems: string[] = [];
  for (const [i, file] of files.entries()) {
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      if (i > 0) mkdirSync(dirname(file), { recursive: true });
      writeFileSync(tmp, bytes);
      renameSync(tmp, file);
      return { file, problems };
    } catch (e) {
      try { rmSync(tmp, { force: true }); } catch { /* nothing was written */ }
      problems.push(`${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return { problems };
}
