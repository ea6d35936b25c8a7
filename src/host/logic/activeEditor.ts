/**
 * Which editor a command acts on (pure; no `vscode` import). Commands act on the active text
 * editor only, never on a hidden or background one: when the focused tab is not a text editor
 * (a binary file, an image, a custom or webview editor) or nothing is selected, the user is told
 * what to do instead.
 */

/** The active text editor as the host sees it (`window.activeTextEditor`). */
export interface TextEditorFacts {
  /** Document URI (string form). */
  uri: string;
  /** File name shown to the user ("sample.txt"). */
  name: string;
  selectionEmpty: boolean;
}

/** The active tab of the active editor group (`window.tabGroups.activeTabGroup.activeTab`). */
export interface ActiveTabFacts {
  label: string;
  /** `text`: TabInputText; `diff`: TabInputTextDiff; `other`: anything else (custom, webview, notebook, binary placeholder). */
  kind: 'text' | 'diff' | 'other';
  /** URIs the tab shows (text: its document; diff: original and modified). */
  uris: string[];
}

/**
 * Why a command cannot run on the active editor, or undefined when it can.
 * @param editor  the active text editor, if any.
 * @param tab  the active tab of the active group, if any (undefined: no editor open).
 */
export function activeEditorProblem(editor: TextEditorFacts | undefined, tab: ActiveTabFacts | undefined): string | undefined {
  const retry = 'Open a text file, select text in it, and run the command again.';
  // A binary file's placeholder is a text tab without a text editor; images and custom editors are other tabs.
  if (tab && ((tab.kind === 'other' && !(editor && tab.uris.includes(editor.uri))) || !editor)) {
    return `Taskling: ${tab.label} is not open as text (a binary file, an image or another non-text editor), and Taskling reads only the active text editor. ${retry}`;
  }
  if (!editor) return `Taskling: no active text editor. ${retry}`;
  if (tab && tab.kind !== 'other' && !tab.uris.includes(editor.uri)) {
    return `Taskling: the focused tab (${tab.label}) is not the text editor Taskling would read (${editor.name}). Click into the text you want and run the command again.`;
  }
  if (editor.selectionEmpty) return `Taskling: select some text in ${editor.name || 'the editor'} first.`;
  return undefined;
}
