// @ts-check
/**
 * Bundles the extension host (src/extension.ts -> dist/extension.js) and the inference worker
 * (src/worker/main.ts -> dist/worker.js) with its session thread (src/worker/sessionMain.ts ->
 * dist/sessionWorker.js) and the GGUF import thread (src/worker/importMain.ts -> dist/importWorker.js),
 * all for Node. onnxruntime-node is native and stays
 * external (shipped in the VSIX under node_modules/, linux-x64 binaries only; see .vscodeignore).
 * The panel's config (webview-ui/webpack.config.js) is appended when present.
 */
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const webpack = require('webpack');

const storeExists = ['src/core/store/index.ts', 'src/core/store/download.ts'].map((f) => fs.existsSync(path.join(__dirname, f)));

/** @type {(entry: string, filename: string) => import('webpack').Configuration} */
const nodeConfig = (entry, filename) => ({
  name: filename.replace(/\.js$/, ''),
  target: 'node20',
  mode: 'none',
  entry: path.resolve(__dirname, entry),
  output: { path: path.resolve(__dirname, 'dist'), filename, libraryTarget: 'commonjs2', clean: false },
  externals: { vscode: 'commonjs vscode', 'onnxruntime-node': 'commonjs onnxruntime-node' },
  resolve: { extensions: ['.ts', '.js', '.json'], conditionNames: ['require', 'node', 'default'], mainFields: ['main', 'module'] },
  node: { __dirname: false, __filename: false },
  devtool: 'nosources-source-map',
  module: {
    rules: [
      { test: /\.ts$/, exclude: /node_modules/, use: [{ loader: 'ts-loader', options: { transpileOnly: true, compilerOptions: { sourceMap: true, module: 'commonjs' } } }] },
      // web-xgrammar's UMD bundle (WASM inlined as base64) as text: src/core/constraints/xgrammarLoader.ts
      // compiles it itself, with its own console (XGrammar's prints stay off stdout) and anew after an abort.
      { test: /@mlc-ai[\\/]web-xgrammar[\\/]lib[\\/]index\.js$/, resourceQuery: /source/, type: 'asset/source' },
    ],
  },
  plugins: [
    // The model downloader (src/core/store) may not exist yet; the host requires it guarded.
    ...(!storeExists[0] ? [new webpack.IgnorePlugin({ resourceRegExp: /^\.\.\/core\/store$/ })] : []),
    ...(!storeExists[1] ? [new webpack.IgnorePlugin({ resourceRegExp: /^\.\.\/core\/store\/download$/ })] : []),
  ],
  optimization: { minimize: false },
  performance: { hints: false },
  infrastructureLogging: { level: 'warn' },
  stats: 'errors-warnings',
  ignoreWarnings: [/Critical dependency/, /Can't resolve '(bufferutil|utf-8-validate)'/],
});

const configs = [
  nodeConfig('src/extension.ts', 'extension.js'),
  nodeConfig('src/worker/main.ts', 'worker.js'),
  nodeConfig('src/worker/sessionMain.ts', 'sessionWorker.js'),
  nodeConfig('src/worker/importMain.ts', 'importWorker.js'),
];
const webviewConfig = path.join(__dirname, 'webview-ui', 'webpack.config.js');
if (fs.existsSync(webviewConfig)) configs.push(require(webviewConfig));

module.exports = configs;
