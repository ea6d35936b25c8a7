/**
 * Reading the model catalog (models/catalog.json, written by the model-store engineer) tolerantly:
 * the host only needs the default model's repo, revision and the download size of a variant.
 * Pure; no `vscode` import.
 */
import { existsSync, readFileSync } from 'node:fs';

/** The default model offered on first use. */
export const DEFAULT_MODEL = {
  id: 'gemma-3-270m-it',
  name: 'Gemma 3 270M (instruction-tuned)',
  repo: 'onnx-community/gemma-3-270m-it-ONNX',
  revision: 'main',
  hubUrl: 'https://huggingface.co',
  variant: 'q4',
};

export interface CatalogModel {
  id: string;
  name: string;
  repo: string;
  revision: string;
  hubUrl: string;
  variant: string;
  /** Download size in bytes of the chosen variant (graph + data + tokenizer files), when known. */
  bytes?: number;
}

/** Sum of numeric `size`/`bytes` fields in a list of file records. */
function sumFiles(files: unknown): number | undefined {
  if (!Array.isArray(files)) return undefined;
  let total = 0;
  for (const f of files) {
    const n = (f as { size?: unknown })?.size ?? (f as { bytes?: unknown })?.bytes ?? (f as { approxBytes?: unknown })?.approxBytes;
    if (typeof n === 'number') total += n;
  }
  return total || undefined;
}

/**
 * The default model from `catalogPath` merged over {@link DEFAULT_MODEL}; a missing or
 * unreadable catalog gives the defaults without a size. Never throws.
 */
export function readDefaultModel(catalogPath: string, variant = DEFAULT_MODEL.variant): CatalogModel {
  const base: CatalogModel = { ...DEFAULT_MODEL, variant };
  if (!existsSync(catalogPath)) return base;
  try {
    const raw = JSON.parse(readFileSync(catalogPath, 'utf8')) as unknown;
    const list: unknown[] = Array.isArray(raw) ? raw : Array.isArray((raw as { models?: unknown[] })?.models) ? (raw as { models: unknown[] }).models : [];
    const m = (list.find((x) => (x as { repo?: string })?.repo === DEFAULT_MODEL.repo) ?? list[0]) as Record<string, unknown> | undefined;
    if (!m) return base;
    const variants = m.variants as Record<string, unknown> | unknown[] | undefined;
    let v: Record<string, unknown> | undefined;
    if (Array.isArray(variants)) v = variants.find((x) => (x as { name?: string; variant?: string; id?: string })?.name === variant || (x as { variant?: string }).variant === variant || (x as { id?: string }).id === variant) as Record<string, unknown> | undefined;
    else if (variants && typeof variants === 'object') v = variants[variant] as Record<string, unknown> | undefined;
    const bytes = [v?.approxBytes, v?.bytes, v?.size, v?.totalBytes, v?.sizeBytes].find((n) => typeof n === 'number') as number | undefined
      ?? sumFiles(v?.files);
    return {
      ...base,
      id: typeof m.id === 'string' ? m.id : base.id,
      name: typeof m.name === 'string' ? m.name : base.name,
      repo: typeof m.repo === 'string' ? m.repo : base.repo,
      revision: typeof m.revision === 'string' ? m.revision : base.revision,
      hubUrl: typeof m.hubUrl === 'string' ? m.hubUrl : base.hubUrl,
      bytes,
    };
  } catch {
    return base;
  }
}
