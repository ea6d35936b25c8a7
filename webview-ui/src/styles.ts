/**
 * Shared styles. Colours come only from VS Code's theme variables (`--vscode-*`), so dark, light
 * and both high-contrast themes work; in high contrast, borders use `--vscode-contrastBorder`
 * and focus uses `--vscode-focusBorder` / `--vscode-contrastActiveBorder`.
 */
import { css } from 'lit';

export const base = css`
  :host {
    display: block;
    color: var(--vscode-foreground);
    font-family: var(--vscode-font-family);
    font-size: var(--vscode-font-size, 13px);
    line-height: 1.4;
    min-width: 0;
  }
  * { box-sizing: border-box; }
  h2, h3 { margin: 0; }
  h2 {
    font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: 0.04em;
    color: var(--vscode-sideBarSectionHeader-foreground, var(--vscode-foreground));
  }
  h3 { font-size: 12px; font-weight: 600; }
  .muted { color: var(--vscode-descriptionForeground); }
  .mono { font-family: var(--vscode-editor-font-family, monospace); font-size: var(--vscode-editor-font-size, 12px); }
  .sr-only {
    position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
    overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
  }
  :focus-visible {
    outline: 1px solid var(--vscode-focusBorder, var(--vscode-contrastActiveBorder));
    outline-offset: 1px;
  }
  .badge {
    display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11px; line-height: 16px;
    white-space: nowrap;
    background: var(--vscode-badge-background); color: var(--vscode-badge-foreground);
    border: 1px solid var(--vscode-contrastBorder, transparent);
  }
  .linkbtn {
    background: none; border: none; padding: 0; font: inherit; cursor: pointer;
    color: var(--vscode-textLink-foreground);
  }
  .linkbtn:hover { color: var(--vscode-textLink-activeForeground); text-decoration: underline; }
  /* Success text stays in the foreground colour (testing-iconPassed is an icon colour: under 4.5:1 on light backgrounds); the colour goes on the icon. */
  .ok { font-weight: 600; }
  .icon.ok, .dot.ok { color: var(--vscode-testing-iconPassed, var(--vscode-charts-green)); }
  .error { color: var(--vscode-errorForeground); }
  /* Warning text stays in the foreground colour (editorWarning is an icon colour: too little
     contrast for text in light themes); the warning colour goes on the icon. */
  .warn { font-weight: 600; }
  .warn::before { content: '⚠\\00a0'; color: var(--vscode-editorWarning-foreground, var(--vscode-charts-yellow)); }
  details > summary { cursor: pointer; }
  code, .code {
    font-family: var(--vscode-editor-font-family, monospace);
    font-size: var(--vscode-editor-font-size, 12px);
    background: var(--vscode-textCodeBlock-background);
    color: var(--vscode-foreground);
    border-radius: 3px; padding: 0 3px;
    overflow-wrap: anywhere;
  }
`;
