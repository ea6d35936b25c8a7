// @ts-check
/**
 * Bundles the sidebar panel (lit + @vscode-elements/elements) into dist/webview/panel.js.
 * Exports ONE webpack config object; the root webpack.config.js includes it via require().
 * Run alone: npx webpack --config webview-ui/webpack.config.js --mode development
 *
 * No eval-based devtool: the webview's CSP (script-src 'nonce-…', no 'unsafe-eval') would block it.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- webpack config is CommonJS
const path = require('node:path');

/** @type {import('webpack').Configuration} */
module.exports = {
  name: 'webview',
  target: 'web',
  entry: path.resolve(__dirname, 'src/main.ts'),
  output: {
    path: path.resolve(__dirname, '..', 'dist', 'webview'),
    filename: 'panel.js',
  },
  resolve: { extensions: ['.ts', '.js'] },
  module: {
    rules: [
      {
        test: /\.ts$/,
        exclude: /node_modules/,
        use: [{ loader: 'ts-loader', options: { instance: 'webview', configFile: path.resolve(__dirname, 'tsconfig.json') } }],
      },
    ],
  },
  devtool: 'source-map',
  performance: { hints: false },
};
