/**
 * The catalog of known models (`models/catalog.json`): hub repo, default revision, variants and
 * the files each variant needs, with approximate sizes for display (the real sizes come from the
 * hub's tree listing at download time).
 */
import { readFileSync } from 'node:fs';
import { TasklingError } from '../errors';
import { MODEL_VARIANTS, graphFileName, type ModelVariant } from '../model/modelFolder';
import bundledCatalog from '../../../models/catalog.json';

/** One file of a variant; `optional` files are fetched when the revision has them. */
export interface CatalogFile {
  path: string;
  optional?: boolean;
  /** Approximate size in bytes, for display before the listing is known. */
  approxBytes?: number;
}

export interface CatalogVariant {
  description: string;
  /** Approximate total download in bytes, for display. */
  approxBytes: number;
  files: CatalogFile[];
}

export interface CatalogModel {
  id: string;
  name: string;
  repo: string;
  /** Default revision (branch, tag or commit); "main". */
  revision: string;
  licence?: string;
  defaultVariant: ModelVariant;
  variants: Partial<Record<ModelVariant, CatalogVariant>>;
}

export interface Catalog {
  version: number;
  models: CatalogModel[];
}

/** Files every Gemma 3 export needs next to the graph. */
export const COMMON_MODEL_FILES: readonly CatalogFile[] = [
  { path: 'config.json' },
  { path: 'generation_config.json' },
  { path: 'tokenizer.json' },
  { path: 'tokenizer_config.json' },
  { path: 'special_tokens_map.json', optional: true },
];

/**
 * The files a variant needs when no catalog entry says otherwise: the common files, the graph and
 * its first external-data file. Further `_data_1`, `_data_2`, ... files are picked up from the
 * tree listing by the downloader.
 */
export function defaultVariantFiles(variant: ModelVariant): CatalogFile[] {
  const graph = `onnx/${graphFileName(variant)}`;
  return [...COMMON_MODEL_FILES, { path: graph }, { path: `${graph}_data` }];
}

function bad(where: string, what: string): never {
  throw new TasklingError('INVALID_INPUT', `Model catalog ${where}: ${what}.`);
}

/** Validates parsed catalog JSON; throws INVALID_INPUT naming the bad entry. */
export function parseCatalog(json: unknown, where = 'models/catalog.json'): Catalog {
  if (!json || typeof json !== 'object' || !Array.isArray((json as Catalog).models)) bad(where, 'expected { "models": [...] }');
  const models: CatalogModel[] = [];
  for (const [i, m] of ((json as Catalog).models as unknown[]).entries()) {
    const e = m as Partial<CatalogModel>;
    const at = `${where} models[${i}]`;
    if (!e || typeof e.id !== 'string' || !e.id) bad(at, 'missing "id"');
    if (typeof e.repo !== 'string' || !/^[\w.-]+\/[\w.-]+$/.test(e.repo)) bad(at, `"repo" must be owner/name`);
    if (!e.variants || typeof e.variants !== 'object') bad(at, 'missing "variants"');
    const variants: Partial<Record<ModelVariant, CatalogVariant>> = {};
    for (const [name, v] of Object.entries(e.variants)) {
      if (!MODEL_VARIANTS.includes(name as ModelVariant)) bad(at, `unknown variant "${name}" (known: ${MODEL_VARIANTS.join(', ')})`);
      const files = (v as CatalogVariant | undefined)?.files;
      if (!Array.isArray(files) || files.some((f) => !f || typeof f.path !== 'string' || f.path.split('/').includes('..') || f.path.startsWith('/'))) {
        bad(at, `variant "${name}" needs a "files" list of relative paths`);
      }
      variants[name as ModelVariant] = {
        description: String((v as CatalogVariant).description ?? ''),
        approxBytes: Number((v as CatalogVariant).approxBytes ?? 0),
        files: files.map((f) => ({ path: f.path, optional: !!f.optional, approxBytes: f.approxBytes })),
      };
    }
    const defaultVariant = (e.defaultVariant ?? 'q4') as ModelVariant;
    if (!variants[defaultVariant]) bad(at, `defaultVariant "${defaultVariant}" is not among its variants`);
    models.push({
      id: e.id,
      name: typeof e.name === 'string' ? e.name : e.id,
      repo: e.repo,
      revision: typeof e.revision === 'string' && e.revision ? e.revision : 'main',
      licence: e.licence,
      defaultVariant,
      variants,
    });
  }
  return { version: Number((json as Catalog).version ?? 1), models };
}

/**
 * Reads the catalog. Without `file`, the copy compiled into the extension (models/catalog.json
 * imported as JSON, so bundling keeps it) is used.
 */
export function loadCatalog(file?: string): Catalog {
  if (!file) return parseCatalog(bundledCatalog);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new TasklingError('INVALID_INPUT', `Model catalog ${file} cannot be read: ${(e as Error).message}.`);
  }
  return parseCatalog(json, file);
}

/** The catalog entry with this id; throws INVALID_INPUT listing the known ids. */
export function getCatalogModel(id: string, catalog: Catalog = loadCatalog()): CatalogModel {
  const m = catalog.models.find((x) => x.id === id);
  if (!m) throw new TasklingError('INVALID_INPUT', `Unknown model "${id}"; the catalog knows ${catalog.models.map((x) => x.id).join(', ')}.`);
  return m;
}

/** Files of one variant of a catalog model; throws INVALID_INPUT listing the available variants. */
export function catalogVariantFiles(model: CatalogModel, variant: ModelVariant = model.defaultVariant): CatalogFile[] {
  const v = model.variants[variant];
  if (!v) throw new TasklingError('INVALID_INPUT', `${model.id} has no variant "${variant}"; available: ${Object.keys(model.variants).join(', ')}.`);
  return v.files;
}
