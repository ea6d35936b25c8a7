/**
 * Read-only virtual documents for results (scheme `taskling-result`), so runs no longer pile up
 * Untitled-N editors that ask to be saved:
 * - `taskling-result:/result/<adapter id>/<adapter name>.json`: the latest JSON result of that
 *   adapter. One document per adapter, reused: a new run replaces its content (onDidChange).
 * - `taskling-result:/preview/<run id>/<file name>`: the run's document as it would read after
 *   *Replace Selection*, the right side of the diff preview.
 * VS Code shows content-provider documents read-only and never asks to save them.
 */
import * as vscode from 'vscode';

export const RESULT_SCHEME = 'taskling-result';

export class ResultDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly contents = new Map<string, string>();
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;
  private readonly registration: vscode.Disposable;

  constructor() {
    this.registration = vscode.workspace.registerTextDocumentContentProvider(RESULT_SCHEME, this);
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.toString()) ?? '// This Taskling result is no longer available (results are kept in memory for this window).\n';
  }

  /** URI of the reused result document of an adapter. */
  static resultUri(adapterId: string, adapterName: string): vscode.Uri {
    const safe = adapterName.replace(/[\\/:*?"<>|#%]+/g, ' ').trim() || adapterId;
    return vscode.Uri.from({ scheme: RESULT_SCHEME, path: `/result/${encodeURIComponent(adapterId)}/${safe}.json` });
  }

  /** URI of the replacement preview of a run. */
  static previewUri(runId: number, fileName: string): vscode.Uri {
    return vscode.Uri.from({ scheme: RESULT_SCHEME, path: `/preview/${runId}/${fileName.replace(/[\\/]+/g, '_')}` });
  }

  /** Sets the content of `uri` and tells open editors to refresh. */
  set(uri: vscode.Uri, text: string): void {
    const key = uri.toString();
    if (this.contents.get(key) === text) return;
    this.contents.set(key, text);
    this.emitter.fire(uri);
  }

  get(uri: vscode.Uri): string | undefined {
    return this.contents.get(uri.toString());
  }

  dispose(): void {
    this.registration.dispose();
    this.emitter.dispose();
    this.contents.clear();
  }
}
