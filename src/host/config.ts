/**
 * Reads `taskling.*` settings, honouring workspace trust: in an untrusted workspace the model
 * path and adapter settings come from user settings only (see logic/settings.ts).
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import type { ModelVariantName } from '../shared/protocol';
import { clampContextTokens, clampMaxNewTokens, clampThreads, trustedValue } from './logic/settings';
import { resolveEndpointSettings } from './logic/endpoint';

/** Effective settings for one run. Paths are absolute (or empty). */
export interface TasklingConfig {
  /** Model folder from settings ('' = not set). */
  modelPath: string;
  variant: ModelVariantName;
  /** onnxruntime intra-op threads; 0 = default. */
  threads: number;
  /** MatMulNBits activations: `auto` (chosen for this CPU), `fp32` or `int8`. */
  accuracyLevel: 'auto' | 'fp32' | 'int8';
  /** Keep adapter prefixes' KV caches on disk (`taskling.prefixCacheOnDisk`, default true). */
  prefixCacheOnDisk: boolean;
  /** Overrides adapters' maxNewTokens when set. */
  maxNewTokens?: number;
  /** Context budget in tokens (prompt + answer); undefined = core's default (4096). */
  maxContextTokens?: number;
  /** Absolute adapter folders (workspace-relative entries resolved against each workspace folder). Empty when untrusted. */
  adapterFolders: string[];
  /** Entries of `taskling.adapters` (paths or inline manifests). */
  adapters: unknown[];
  /** Base folder for relative adapter paths. */
  baseDir: string;
  offline: boolean;
  /** Hugging Face hub (or mirror) base URL for model downloads (user setting only: never from an untrusted workspace). */
  hubUrl: string;
  trusted: boolean;
}

const VARIANTS: ModelVariantName[] = ['q4', 'fp32', 'fp16', 'q4f16'];

/** Reads the effective configuration now. */
export function readConfig(): TasklingConfig {
  const c = vscode.workspace.getConfiguration('taskling');
  const trusted = vscode.workspace.isTrusted;
  const folders = vscode.workspace.workspaceFolders ?? [];
  const baseDir = folders[0]?.uri.fsPath ?? process.cwd();
  const resolveHome = (p: string) => (p.startsWith('~/') ? path.join(process.env.HOME ?? '', p.slice(2)) : p);
  const rawModel = trustedValue(c.inspect<string>('modelPath'), trusted) ?? '';
  const modelPath = rawModel ? path.resolve(baseDir, resolveHome(rawModel)) : '';
  const variant = c.get<string>('modelVariant', 'q4') as ModelVariantName;
  const rawFolders = trustedValue(c.inspect<string[]>('adapterFolders'), trusted) ?? [];
  const adapterFolders: string[] = [];
  if (trusted) {
    for (const f of Array.isArray(rawFolders) ? rawFolders : []) {
      if (typeof f !== 'string' || !f) continue;
      const p = resolveHome(f);
      if (path.isAbsolute(p)) adapterFolders.push(p);
      else for (const wf of folders) adapterFolders.push(path.join(wf.uri.fsPath, p));
    }
  }
  const adapters = trustedValue(c.inspect<unknown[]>('adapters'), trusted) ?? [];
  return {
    modelPath,
    variant: VARIANTS.includes(variant) ? variant : 'q4',
    threads: clampThreads(c.get('threads')),
    accuracyLevel: ((a) => (a === 'fp32' || a === 'int8' ? a : 'auto'))(c.get<string>('accuracyLevel', 'auto')),
    prefixCacheOnDisk: c.get<boolean>('prefixCacheOnDisk', true) !== false,
    maxNewTokens: clampMaxNewTokens(c.get('maxNewTokens')),
    maxContextTokens: clampContextTokens(c.get('maxContextTokens')),
    adapterFolders: [...new Set(adapterFolders)],
    adapters: Array.isArray(adapters) ? adapters : [],
    baseDir,
    offline: c.get<boolean>('offline', false),
    hubUrl: (trustedValue(c.inspect<string>('hubUrl'), trusted) || 'https://huggingface.co').replace(/\/+$/, ''),
    trusted,
  };
}

/**
 * The endpoint tasks run on (`taskling.endpoint.*`), or `settings` undefined when
 * `taskling.endpoint.url` is empty (the default: tasks run on this machine). In an untrusted
 * workspace only user settings are read; `ignored` names the workspace values that were not.
 */
export function readEndpointSettings(): ReturnType<typeof resolveEndpointSettings> {
  const c = vscode.workspace.getConfiguration('taskling.endpoint');
  return resolveEndpointSettings({
    url: c.inspect<string>('url'), model: c.inspect<string>('model'), concurrency: c.inspect<number>('concurrency'),
    timeoutSeconds: c.inspect<number>('timeoutSeconds'), apiKeyEnv: c.inspect<string>('apiKeyEnv'),
  }, vscode.workspace.isTrusted);
}
