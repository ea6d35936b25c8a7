/**
 * Entry of the sidebar panel bundle (dist/webview/panel.js). Registers the VS Code elements it
 * uses and mounts <taskling-panel>, which posts `ready` and then renders what the host sends.
 * No inline scripts/styles/handlers: styles are constructable stylesheets (adoptedStyleSheets),
 * which the webview's CSP allows without 'unsafe-inline'.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import './components/taskling-panel';

/** Page-level rules, adopted (not a <style> element) so no 'unsafe-inline' is needed. VS Code's
 * default webview styles pad the body by 20px, too much for a sidebar. */
function adoptPageStyles(): void {
  try {
    const sheet = new CSSStyleSheet();
    // High contrast light defines no button.secondaryHoverBackground, and vscode-button then
    // falls back to #3c3c3c behind dark text (unreadable on hover / focus): keep the background.
    sheet.replaceSync('body { padding: 0; margin: 0; }\n'
      + 'body.vscode-high-contrast-light { --vscode-button-secondaryHoverBackground: var(--vscode-button-secondaryBackground, #ffffff); }');
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  } catch { /* older engines: keep the defaults */ }
}

function mount(): void {
  adoptPageStyles();
  if (document.querySelector('taskling-panel')) return;
  document.body.appendChild(document.createElement('taskling-panel'));
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mount, { once: true });
else mount();
