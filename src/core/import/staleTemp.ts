/**
 * Temporary folders of imports that never finished. An import writes into
 * `<parent>/.taskling-import-<name>-<pid>-<ms>` (and moves an old output aside as
 * `...-old-<pid>-<ms>`) and renames or removes it at the end; a process killed with SIGKILL (or a
 * power cut) leaves it behind. The next import into the same parent removes those whose process
 * is gone.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** A removed leftover: its path and the process id in its name. */
export interface StaleTempFolder {
  path: string;
  pid: number;
}

/** True while process `pid` exists on this machine (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the folders in `parent` named `<prefix>...-<pid>-<ms>` whose process `pid` is gone.
 * Folders of live processes (another import running now, this process included) are kept;
 * entries that are not folders, or whose names do not end in `-<pid>-<ms>`, are not touched.
 * Never throws: an unreadable parent or a folder that cannot be removed is left as it is.
 * @returns the folders removed.
 */
export function removeStaleTempFolders(parent: string, prefix: string, alive: (pid: number) => boolean = processAlive): StaleTempFolder[] {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  const removed: StaleTempFolder[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /-(\d+)-\d+$/.exec(name.slice(prefix.length));
    const pid = m ? Number(m[1]) : NaN;
    if (!Number.isSafeInteger(pid) || pid <= 0 || alive(pid)) continue;
    const path = join(parent, name);
    try {
      if (!statSync(path).isDirectory()) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push({ path, pid });
    } catch {
      // in use or not ours to remove: leave it
    }
  }
  return removed;
}
