/**
 * Loads `@mlc-ai/web-xgrammar` (XGrammar compiled to WASM, embedded as base64) from CommonJS.
 *
 * The package ships a UMD bundle at `lib/index.js` but declares `"type": "module"`, so plain
 * Node treats that file as ESM: `require()` (require(esm) in Node 20.19+) returns an empty
 * namespace and `import()` fails with "require is not defined in ES module scope". We therefore
 * read the file and compile it as a CommonJS module ourselves (`Module#_compile`, the same path
 * `require` uses for `.cjs`; it also gives the bundle a working dynamic `import('module')`).
 *
 * Under webpack (the extension bundle) this file calls plain `require('@mlc-ai/web-xgrammar')`;
 * webpack must then parse the UMD as CommonJS instead of strict ESM, with a rule such as
 * `{ test: /@mlc-ai[\\/]web-xgrammar[\\/]lib[\\/]index\.js$/, type: 'javascript/auto' }`
 * (target `node`, so `import('module')` and `require('url')` inside stay Node built-ins).
 */
import { Module } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type * as XGrammar from '@mlc-ai/web-xgrammar';

/** The web-xgrammar module namespace (`Grammar`, `GrammarCompiler`, `GrammarMatcher`, `TokenizerInfo`, ...). */
export type XGrammarModule = typeof XGrammar;

declare const __webpack_require__: unknown;

let loaded: XGrammarModule | undefined;

/**
 * Returns the web-xgrammar namespace, loading it on first call (~40 ms; the WASM instance itself
 * is created lazily by web-xgrammar on its first async factory call).
 * @throws Error when the package is not installed or its bundle does not export `GrammarCompiler`.
 */
export function loadXGrammar(): XGrammarModule {
  if (loaded) return loaded;
  let mod: Partial<XGrammarModule> | undefined;
  if (typeof __webpack_require__ === 'function') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require('@mlc-ai/web-xgrammar') as XGrammarModule;
  } else {
    const file = require.resolve('@mlc-ai/web-xgrammar/lib/index.js');
    const m = new Module(file, module) as Module & { _compile(src: string, file: string): void };
    m.filename = file;
    m.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(dirname(file));
    m._compile(readFileSync(file, 'utf8'), file);
    mod = m.exports as XGrammarModule;
  }
  if (!mod || typeof mod.GrammarCompiler !== 'function') {
    throw new Error('@mlc-ai/web-xgrammar loaded but exports no GrammarCompiler (was the UMD bundle parsed as ESM?)');
  }
  loaded = mod as XGrammarModule;
  return loaded;
}
