/**
 * The model's identity hash ({@link modelFileHash}: sha256 of the graph + its external data,
 * ~235 MB for Gemma 3 270M q4, 0.2-0.8 s) remembered across processes, so the first task result
 * of a fresh process does not wait for it.
 *
 * The remembered hash is used only while every file still has the same size, modification time,
 * status-change time (ns), inode and device as when it was hashed (the test `make` and `git`'s
 * index use). Writing a file in place changes its status-change time, which no one can set back,
 * so a changed file is always hashed again. Stored beside the model (`.taskling-model-sha256.json`),
 * or in the user cache folder when the model folder is read-only; `TASKLING_MODEL_HASH_CACHE=0`
 * hashes every time and writes nothing. Pure core.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir, writeFirstWritable } from '../cacheFiles';
import { ModelFolder, modelFileHash } from './modelFolder';

/** File name of the remembered hash inside a model folder. */
export const MODEL_HASH_FILE = '.taskling-model-sha256.json';

/** One hashed file's path and stamps (bigint values as decimal strings). */
interface Stamp { path: string; size: string; mtimeNs: string; ctimeNs: string; ino: string; dev: string }

interface Remembered { format: 1; files: Stamp[]; sha256: string }

function stamps(paths: string[]): Stamp[] {
  return paths.map((path) => {
    const s = statSync(path, { bigint: true });
    return { path, size: String(s.size), mtimeNs: String(s.mtimeNs), ctimeNs: String(s.ctimeNs), ino: String(s.ino), dev: String(s.dev) };
  });
}

/**
 * {@link modelFileHash} of `folder`, from the remembered value when the files are unchanged,
 * else computed and remembered (best effort: a folder and cache that cannot be written only
 * cost the hash next time).
 * @param cacheDir folder used when the model folder is read-only (default: the user cache folder).
 * @returns the sha256 (hex) and whether it was `remembered` or `computed`.
 * @throws Error from reading a model file (as modelFileHash).
 */
export function rememberedModelFileHash(folder: ModelFolder, cacheDir = defaultCacheDir()): { sha256: string; source: 'remembered' | 'computed' } {
  if (/^(0|off|false|no)$/i.test(process.env.TASKLING_MODEL_HASH_CACHE ?? '')) return { sha256: modelFileHash(folder), source: 'computed' };
  const paths = [folder.graphPath, ...folder.externalData.map((d) => d.path)];
  const before = stamps(paths);
  const now = JSON.stringify(before);
  const locations = [join(folder.dir, MODEL_HASH_FILE), join(cacheDir, `model-sha256-${createHash('sha256').update(paths.join('\0')).digest('hex').slice(0, 32)}.json`)];
  for (const file of locations) {
    try {
      const r = JSON.parse(readFileSync(file, 'utf8')) as Remembered;
      if (r.format === 1 && /^[0-9a-f]{64}$/.test(r.sha256) && JSON.stringify(r.files) === now) return { sha256: r.sha256, source: 'remembered' };
    } catch {
      // missing or unreadable: look further, else hash
    }
  }
  const sha256 = modelFileHash(folder);
  // Remember only when nothing changed while hashing.
  if (JSON.stringify(stamps(paths)) === now) {
    const r: Remembered = { format: 1, files: before, sha256 };
    writeFirstWritable(locations, Buffer.from(`${JSON.stringify(r, null, 1)}\n`, 'utf8'));
  }
  return { sha256, source: 'computed' };
}
