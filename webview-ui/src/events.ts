/** Events child components raise; the root <taskling-panel> turns actions into host messages. */
import type { PanelToHost } from '../../src/shared/panelProtocol';

/** Ask the root to post `detail` to the extension host. */
export const ACTION = 'tl-action';
/** Show run `detail` (a runId) in the result view. */
export const SHOW_RUN = 'tl-show-run';

export function emitAction(from: EventTarget, message: PanelToHost): void {
  from.dispatchEvent(new CustomEvent<PanelToHost>(ACTION, { detail: message, bubbles: true, composed: true }));
}

export function emitShowRun(from: EventTarget, runId: number): void {
  from.dispatchEvent(new CustomEvent<number>(SHOW_RUN, { detail: runId, bubbles: true, composed: true }));
}
