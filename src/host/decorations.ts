/**
 * Entity highlights in the editor: one decoration type per palette slot (colours contributed
 * as `taskling.entity0..5` in package.json), hovers giving type and probability.
 * Highlights are kept per document and cleared when the document changes inside a highlight
 * or on `Taskling: Clear Highlights`.
 */
import * as vscode from 'vscode';
import { colorSlot, DocSpan, ENTITY_COLOR_COUNT, hoverText } from './logic/spans';

export class EntityDecorations implements vscode.Disposable {
  private readonly types: vscode.TextEditorDecorationType[] = [];
  /** Document URI -> spans with document offsets. */
  private readonly byDoc = new Map<string, DocSpan[]>();
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    for (let i = 0; i < ENTITY_COLOR_COUNT; i++) {
      this.types.push(vscode.window.createTextEditorDecorationType({
        backgroundColor: new vscode.ThemeColor(`taskling.entity${i}`),
        borderRadius: '2px',
        overviewRulerColor: new vscode.ThemeColor(`taskling.entity${i}`),
        overviewRulerLane: vscode.OverviewRulerLane.Center,
      }));
    }
    this.subs.push(
      vscode.window.onDidChangeVisibleTextEditors((eds) => eds.forEach((e) => this.apply(e))),
      vscode.workspace.onDidChangeTextDocument((ev) => {
        if (ev.contentChanges.length && this.byDoc.has(ev.document.uri.toString())) this.clear(ev.document);
      }),
      vscode.workspace.onDidCloseTextDocument((d) => this.byDoc.delete(d.uri.toString())),
    );
  }

  /** Replaces the highlights of `document` with `spans` (document offsets). */
  set(document: vscode.TextDocument, spans: DocSpan[]): void {
    this.byDoc.set(document.uri.toString(), spans);
    for (const e of vscode.window.visibleTextEditors) if (e.document === document) this.apply(e);
  }

  /** Spans currently shown for a document (tests and the panel use it). */
  get(document: vscode.TextDocument): readonly DocSpan[] {
    return this.byDoc.get(document.uri.toString()) ?? [];
  }

  /** Decoration options per palette slot for `document` (exposed for tests). */
  optionsFor(document: vscode.TextDocument): vscode.DecorationOptions[][] {
    const perSlot: vscode.DecorationOptions[][] = this.types.map(() => []);
    for (const s of this.get(document)) {
      const range = new vscode.Range(document.positionAt(s.start), document.positionAt(s.end));
      const hover = new vscode.MarkdownString(hoverText(s));
      perSlot[colorSlot(s.type)].push({ range, hoverMessage: hover });
    }
    return perSlot;
  }

  clear(document?: vscode.TextDocument): void {
    if (document) this.byDoc.delete(document.uri.toString());
    else this.byDoc.clear();
    for (const e of vscode.window.visibleTextEditors) if (!document || e.document === document) this.apply(e);
  }

  private apply(editor: vscode.TextEditor): void {
    const opts = this.optionsFor(editor.document);
    this.types.forEach((t, i) => editor.setDecorations(t, opts[i]));
  }

  dispose(): void {
    this.subs.forEach((s) => s.dispose());
    this.types.forEach((t) => t.dispose());
    this.byDoc.clear();
  }
}
