/**
 * The installed models the Models view lists (pure; no `vscode` import): the folder in
 * `taskling.modelPath`, models downloaded into the extension's storage (core/store's download
 * records) and models imported from GGUF (`<storage>/imported/*`, with `taskling-import.json`).
 * Sizes are bytes on disk (symlinks followed, as a Hugging Face cache snapshot links into blobs/).
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { EngineState } from '../../shared/panelProtocol';
import { formatBytes } from './format';

/** Where a listed model came from. */
export type ModelSource = 'settings' | 'downloaded' | 'imported';

export interface InstalledModel {
  /** Absolute folder path. */
  dir: string;
  /** Display name: the download's repo name, the GGUF's model name, or the folder name. */
  name: string;
  source: ModelSource;
  /** One line on the source: "downloaded from onnx-community/…@abc1234", "imported from x.gguf", "your folder". */
  sourceDetail: string;
  /** Graph variants present in `onnx/` (`model.onnx` -> fp32, `model_<v>.onnx` -> v), sorted. */
  variants: string[];
  /** Weights as imported (`q4`, `q8`, `auto`) for GGUF imports; the graph file is still model_q4.onnx. */
  weights?: string;
  /** Bytes of every file in the folder (recursive, symlinks followed). */
  bytes: number;
  /** True only for folders Taskling created (under the download or import root). */
  deletable: boolean;
}

/** Graph variants in `<dir>/onnx/` (hidden rewrite caches skipped). */
export function graphVariants(dir: string): string[] {
  const onnx = path.join(dir, 'onnx');
  if (!existsSync(onnx)) return [];
  const out = new Set<string>();
  for (const n of readdirSync(onnx)) {
    if (n.startsWith('.')) continue;
    const m = /^model(?:_(\w+))?\.onnx$/.exec(n);
    if (m) out.add(m[1] ?? 'fp32');
  }
  return [...out].sort();
}

/** Bytes under `dir` (files and symlinked files; a file is counted once per path). */
export function folderBytes(dir: string): number {
  let total = 0;
  const walk = (d: string, depth: number): void => {
    if (depth > 8) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      try {
        const st = statSync(p);
        if (st.isDirectory()) walk(p, depth + 1);
        else if (st.isFile()) total += st.size;
      } catch { /* dangling link */ }
    }
  };
  try { walk(dir, 0); } catch { /* unreadable */ }
  return total;
}

/** The variant to show: an import's weights, else the graph variants ("q4", "fp32 + q4"). */
export function variantLabel(m: Pick<InstalledModel, 'variants' | 'weights'>): string {
  if (m.weights) return m.weights;
  return m.variants.length ? m.variants.join(' + ') : 'no ONNX graph';
}

function readJson(file: string): Record<string, unknown> | undefined {
  try { return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>; } catch { return undefined; }
}

function real(p: string): string {
  try { return realpathSync(p); } catch { return path.resolve(p); }
}

/** Whether `child` is `root` or inside it (after resolving links). */
export function isInside(child: string, root: string): boolean {
  const rel = path.relative(real(root), real(child));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** A download record as core/store's findDownloadedModels returns it (the fields used here). */
export interface DownloadedRecord { dir: string; repo: string; sha?: string; revision?: string }

/**
 * Lists the models Taskling can use, the configured folder first, without duplicates.
 * @param o.configured  `taskling.modelPath` (absolute; empty when unset).
 * @param o.downloads   core/store `findDownloadedModels(downloadRoot)`.
 * @param o.downloadRoot, o.importRoot  the folders Taskling creates models in (their models are deletable).
 */
export function listInstalledModels(o: { configured?: string; downloads: DownloadedRecord[]; downloadRoot: string; importRoot: string }): InstalledModel[] {
  const out: InstalledModel[] = [];
  const seen = new Set<string>();
  const add = (dir: string, m: Omit<InstalledModel, 'dir' | 'variants' | 'bytes' | 'deletable'>): void => {
    const key = real(dir);
    if (seen.has(key) || !existsSync(dir)) return;
    seen.add(key);
    const deletable = isInside(dir, o.downloadRoot) || isInside(dir, o.importRoot);
    out.push({ dir, ...m, variants: graphVariants(dir), bytes: folderBytes(dir), deletable });
  };
  const imported = (dir: string): Omit<InstalledModel, 'dir' | 'variants' | 'bytes' | 'deletable'> | undefined => {
    const rec = readJson(path.join(dir, 'taskling-import.json'));
    if (!rec) return undefined;
    const src = (rec.source ?? {}) as { file?: string; name?: string };
    return { name: src.name || path.basename(dir), source: 'imported', sourceDetail: `imported from ${src.file ?? 'a GGUF file'}`, weights: typeof rec.weights === 'string' ? rec.weights : undefined };
  };
  const download = (d: DownloadedRecord): Omit<InstalledModel, 'dir' | 'variants' | 'bytes' | 'deletable'> => ({
    name: d.repo.split('/').pop() ?? d.repo, source: 'downloaded', sourceDetail: `downloaded from ${d.repo}${d.sha ? `@${d.sha.slice(0, 7)}` : ''}`,
  });
  if (o.configured) {
    const d = o.downloads.find((x) => real(x.dir) === real(o.configured!));
    add(o.configured, d ? download(d) : imported(o.configured) ?? { name: path.basename(o.configured), source: 'settings', sourceDetail: 'your folder (taskling.modelPath)' });
  }
  for (const d of o.downloads) add(d.dir, download(d));
  if (existsSync(o.importRoot)) {
    for (const e of readdirSync(o.importRoot, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue;
      const dir = path.join(o.importRoot, e.name);
      if (!existsSync(path.join(dir, 'config.json'))) continue;
      add(dir, imported(dir) ?? { name: e.name, source: 'imported', sourceDetail: 'imported' });
    }
  }
  return out;
}

/**
 * The one wording of the model state, for the Models view, the panel and the status bar:
 * `ready` is split by `loaded` (set up but not loaded until the first run or the panel opens).
 */
export function modelStateWords(s: EngineState): string {
  switch (s.kind) {
    case 'notSetUp': return 'no model';
    case 'loading': return 'loading';
    case 'ready': return s.loaded ? 'loaded' : 'set up, not loaded yet (loads on the first run)';
    case 'running': return 'running';
    case 'error': return 'error';
  }
}

/** The Models view's description of one model: "active · loaded · q4 · 812 MB · downloaded". */
export function modelDescription(m: InstalledModel, active: boolean, state: EngineState): string {
  const parts = [variantLabel(m), formatBytes(m.bytes), m.source];
  if (active) parts.unshift('active', state.kind === 'ready' && !state.loaded ? 'not loaded yet' : modelStateWords(state));
  return parts.join(' · ');
}
