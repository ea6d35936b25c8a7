/**
 * HTML of the panel webview (pure; no `vscode` import): CSP `default-src 'none'`, scripts only
 * with the per-load nonce, styles and images only from the webview's own resource root.
 */
import { randomBytes } from 'node:crypto';

/** 128-bit nonce, base64 (crypto.randomBytes, never Math.random). */
export function makeNonce(): string {
  return randomBytes(16).toString('base64');
}

export interface PanelHtmlOptions {
  /** `webview.cspSource`. */
  cspSource: string;
  nonce: string;
  /** Webview URI of dist/webview/panel.js; undefined when the bundle is missing. */
  scriptUri?: string;
  /** Webview URI of dist/webview/panel.css, when present. */
  styleUri?: string;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

export function panelHtml(o: PanelHtmlOptions): string {
  const csp = [
    "default-src 'none'",
    `img-src ${o.cspSource} data:`,
    `font-src ${o.cspSource}`,
    `style-src ${o.cspSource} 'nonce-${o.nonce}'`,
    `script-src 'nonce-${o.nonce}'`,
  ].join('; ');
  const body = o.scriptUri
    ? `<taskling-panel></taskling-panel>\n<div id="root"></div>\n<script nonce="${esc(o.nonce)}" src="${esc(o.scriptUri)}"></script>`
    : '<p>The Taskling panel bundle (dist/webview/panel.js) is missing. Run <code>npm run bundle</code>.</p>';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${o.styleUri ? `<link rel="stylesheet" href="${esc(o.styleUri)}">` : ''}
<title>Taskling</title>
</head>
<body>
${body}
</body>
</html>`;
}
