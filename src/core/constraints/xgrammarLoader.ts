/**
 * Loads `@mlc-ai/web-xgrammar` (XGrammar compiled to WASM, embedded as base64) from CommonJS.
 *
 * The package ships a UMD bundle at `lib/index.js` but declares `"type": "module"`, so plain
 * Node treats that file as ESM: `require()` (require(esm) in Node 20.19+) returns an empty
 * namespace and `import()` fails with "require is not defined in ES module scope". We therefore
 * read the file and compile it as a CommonJS module ourselves (`Module#_compile`, the same path
 * `require` uses for `.cjs`; it also gives the bundle a working dynamic `import('module')`).
 *
 * Each instance is compiled from the bundle's text inside a function that gives it our own
 * `console` (XGrammar prints `[WARNING]`/`[FATAL]` lines through Emscripten's print/printErr,
 * which default to console.log/console.error: standard output), and a new instance can be made
 * after a WebAssembly abort ({@link discardXGrammar}). Under webpack (the extension bundle) the
 * text comes from `require('@mlc-ai/web-xgrammar/lib/index.js?source')`, which needs the rule
 * `{ test: /@mlc-ai[\\/]web-xgrammar[\\/]lib[\\/]index\.js$/, resourceQuery: /source/, type: 'asset/source' }`
 * (target `node`, so `import('module')` and `require('url')` inside stay Node built-ins).
 */
import { Module } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { format } from 'node:util';
import type * as XGrammar from '@mlc-ai/web-xgrammar';

/** The web-xgrammar module namespace (`Grammar`, `GrammarCompiler`, `GrammarMatcher`, `TokenizerInfo`, ...). */
export type XGrammarModule = typeof XGrammar;

/**
 * Receives every line XGrammar prints (`[WARNING] ...`, `[FATAL] ...`, `Aborted()`) with its
 * level from {@link xgrammarLineLevel}.
 */
export type XGrammarLogSink = (line: string, level: XGrammarLogLevel) => void;

/** Level of an XGrammar line. */
export type XGrammarLogLevel = 'debug' | 'info' | 'warning' | 'error';

/**
 * The level of a line XGrammar printed, from its tag: `[FATAL]`/`[ERROR]` and Emscripten's
 * `Aborted(...)` are errors, `[WARNING]` a warning, `[DEBUG]` debug, anything else (`[INFO]`,
 * untagged text) info.
 */
export function xgrammarLineLevel(line: string): XGrammarLogLevel {
  if (/^\s*(\[(FATAL|ERROR)\]|Aborted\()/.test(line)) return 'error';
  if (/^\s*\[WARN(ING)?\]/.test(line)) return 'warning';
  if (/^\s*\[DEBUG\]/.test(line)) return 'debug';
  return 'info';
}

declare const __webpack_require__: unknown;

let loaded: XGrammarModule | undefined;
let generation = 0;
let lastFatal: string | undefined;
let sink: XGrammarLogSink = (line) => { process.stderr.write(`xgrammar: ${line}\n`); };

/**
 * Where XGrammar's own output goes. Default: standard error, each line prefixed `xgrammar: `
 * (never standard output, which holds only results). The extension can route it to its log.
 */
export function setXGrammarLogSink(fn: XGrammarLogSink): void {
  sink = fn;
}

/**
 * The last `[FATAL]` line XGrammar printed (without its source-file prefix), e.g.
 * `minItems is greater than maxItems: 40 > 16`, or undefined. Read it right after a failed call.
 */
export function lastXGrammarFatal(): string | undefined {
  return lastFatal;
}

/** Console handed to the bundle: XGrammar's Emscripten `print`/`printErr` default to console.log/error. */
const quietConsole = (() => {
  const line = (...args: unknown[]) => {
    const text = format(...args);
    for (const l of text.split('\n')) {
      const m = /^\[FATAL\]\s+(?:\S+?\.(?:cc|h|cpp):\d+:\s*)?(.*)$/.exec(l);
      if (m) lastFatal = m[1];
      if (l.trim()) sink(l, xgrammarLineLevel(l));
    }
  };
  return Object.assign(Object.create(console) as Console, { log: line, info: line, warn: line, error: line, debug: line, trace: line });
})();

/**
 * Number of the web-xgrammar instance {@link loadXGrammar} returns now; it grows by one after
 * each {@link discardXGrammar}. Objects (token tables, compilers, grammars, matchers) belong to
 * the instance that made them and must not be mixed across instances.
 */
export function xgrammarGeneration(): number {
  return generation;
}

/**
 * Forgets the current web-xgrammar instance, so the next {@link loadXGrammar} builds a new one
 * (a fresh WebAssembly module). Call it after an abort (`Aborted()`): an aborted module keeps
 * its unwound stack and, after some dozens of aborts, hangs in later calls (measured with
 * 0.1.27: the 44th abort in one module never returned). Objects of the old instance are left to
 * the garbage collector (calling into it again is not safe).
 */
export function discardXGrammar(): void {
  loaded = undefined;
  generation++;
}

/** True when `e` is a WebAssembly abort of XGrammar (the module is unusable afterwards). */
export function isXGrammarAbort(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return /Aborted\(/.test(msg) || (e instanceof Error && e.name === 'RuntimeError'); // WebAssembly.RuntimeError
}

/**
 * Returns the web-xgrammar namespace, loading a new instance on first call and after
 * {@link discardXGrammar} (~40 ms; the WASM instance itself is created lazily by web-xgrammar on
 * its first async factory call). The bundle sees a console that sends its output to the sink of
 * {@link setXGrammarLogSink}, never to standard output.
 * @throws Error when the package is not installed or its bundle does not export `GrammarCompiler`.
 */
export function loadXGrammar(): XGrammarModule {
  if (loaded) return loaded;
  let source: string;
  let file: string;
  if (typeof __webpack_require__ === 'function') {
    // The bundle's text (webpack rule `resourceQuery: /source/, type: 'asset/source'`).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const asset = require('@mlc-ai/web-xgrammar/lib/index.js?source') as string | { default: string };
    source = typeof asset === 'string' ? asset : asset.default;
    file = `${__dirname}/web-xgrammar.js`;
  } else {
    file = require.resolve('@mlc-ai/web-xgrammar/lib/index.js');
    source = readFileSync(file, 'utf8');
  }
  const m = new Module(file) as Module & { _compile(src: string, file: string): void; tasklingConsole?: Console };
  m.filename = file;
  m.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(dirname(file));
  m.tasklingConsole = quietConsole; // no parent module: a discarded instance must not stay reachable from module.children
  // One line, so the bundle's line numbers stay as they are.
  m._compile(`(function (console) {${source}\n}).call(this, module.tasklingConsole);`, file);
  const mod = m.exports as Partial<XGrammarModule>;
  if (!mod || typeof mod.GrammarCompiler !== 'function') {
    throw new Error('@mlc-ai/web-xgrammar loaded but exports no GrammarCompiler (was the UMD bundle parsed as ESM?)');
  }
  loaded = mod as XGrammarModule;
  return loaded;
}
