/**
 * The one handle on VS Code's webview API. `acquireVsCodeApi()` may be called only once per
 * page load, so everything goes through {@link vscode}.
 */
import type { PanelToHost } from '../../src/shared/panelProtocol';

interface RawApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare global {
  // Injected by VS Code into every webview (and stubbed by the browser tests' harness).
  var acquireVsCodeApi: (() => RawApi) | undefined;
}

/** Typed wrapper: only {@link PanelToHost} messages can be posted. */
export interface VsCodeApi {
  post(message: PanelToHost): void;
  getState(): unknown;
  setState(state: unknown): void;
}

function acquire(): VsCodeApi {
  const raw: RawApi = typeof globalThis.acquireVsCodeApi === 'function'
    ? globalThis.acquireVsCodeApi()
    : { // Opened outside VS Code: keep working, post nowhere.
        postMessage: (m) => console.debug('[taskling] postMessage (no host)', m),
        getState: () => undefined,
        setState: () => undefined,
      };
  return {
    post: (m) => raw.postMessage(m),
    getState: () => raw.getState(),
    setState: (s) => raw.setState(s),
  };
}

export const vscode: VsCodeApi = acquire();
