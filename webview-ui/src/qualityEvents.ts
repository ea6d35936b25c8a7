/** Quality-loop host messages inside the panel: <taskling-panel> re-dispatches them on `window`; components subscribe. */
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import type { HostToQuality } from '../../src/shared/qualityProtocol';

/** Window event carrying a validated quality-loop host message (detail: HostToQuality). */
export const QUALITY_MESSAGE = 'tl-quality-message';

/** Calls `onMessage` with every quality message while the host element is connected. */
export class QualityMessages implements ReactiveController {
  private readonly listener = (e: Event) => this.onMessage((e as CustomEvent<HostToQuality>).detail);

  constructor(host: ReactiveControllerHost, private readonly onMessage: (m: HostToQuality) => void) {
    host.addController(this);
  }

  hostConnected(): void {
    window.addEventListener(QUALITY_MESSAGE, this.listener);
  }

  hostDisconnected(): void {
    window.removeEventListener(QUALITY_MESSAGE, this.listener);
  }
}
