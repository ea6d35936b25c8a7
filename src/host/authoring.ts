/**
 * Writing adapters in the editor: *New Adapter…* (pick the task kind, name it -> a filled
 * template written to the first adapter folder and opened beside) and *Create Adapter from
 * Selection…* (task kind, labels or entity types typed in a quick input; the selection becomes
 * the first example for classify). Files are `*.taskling.json`, so VS Code validates them with
 * the adapter schema and the folder watcher loads them. Without a trusted workspace folder the
 * template opens as an Untitled JSON document to save where the user wants.
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import type { TaskKindName } from '../shared/panelProtocol';
import { readConfig } from './config';
import { taskTitle } from './logic/adapters';
import { adapterIdFrom, adapterTemplate, parseItems } from './logic/templates';

const KINDS: { task: TaskKindName; detail: string; ask: string; example: string }[] = [
  { task: 'classify', detail: 'Pick one (or several) labels for the text: sentiment, routing, moderation…', ask: 'Labels, separated by commas', example: 'billing, bug, feature request' },
  { task: 'extract', detail: 'Find mentions of entity types, each at its exact place in the text', ask: 'Entity types, separated by commas', example: 'PERSON, ORG, DATE' },
  { task: 'toJson', detail: 'Turn the text into JSON valid against a JSON Schema', ask: 'Top-level JSON fields, separated by commas', example: 'title, date, amount' },
];

async function pickKind(title: string, only?: TaskKindName[]): Promise<(typeof KINDS)[number] | undefined> {
  const items = KINDS.filter((k) => !only || only.includes(k.task)).map((k) => ({ label: taskTitle(k.task), detail: k.detail, k }));
  return (await vscode.window.showQuickPick(items, { title, placeHolder: 'What should the adapter do?' }))?.k;
}

/** Writes the manifest into the first adapter folder (unique file name) and opens it beside. */
async function writeAndOpen(manifest: Record<string, unknown>, id: string): Promise<vscode.Uri | undefined> {
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  const cfg = readConfig();
  const folder = cfg.trusted ? cfg.adapterFolders[0] : undefined;
  if (!folder) {
    const doc = await vscode.workspace.openTextDocument({ language: 'json', content: text });
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside });
    void vscode.window.showInformationMessage(`Taskling: save it as ${id}.taskling.json in a folder listed in taskling.adapterFolders (open a trusted workspace folder to have it written there).`);
    return doc.uri;
  }
  let uri = vscode.Uri.file(path.join(folder, `${id}.taskling.json`));
  for (let i = 2; await exists(uri); i++) uri = vscode.Uri.file(path.join(folder, `${id}-${i}.taskling.json`));
  await vscode.workspace.fs.createDirectory(vscode.Uri.file(folder));
  await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(text));
  await vscode.window.showTextDocument(uri, { viewColumn: vscode.ViewColumn.Beside, preview: false });
  return uri;
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try { await vscode.workspace.fs.stat(uri); return true; } catch { return false; }
}

/**
 * *New Adapter…*. Arguments (for tests and links): `{ task, name, items }` skip the prompts.
 * @returns the new file's URI, or undefined when cancelled.
 */
export async function newAdapter(args?: { task?: TaskKindName; name?: string; items?: string[] }): Promise<vscode.Uri | undefined> {
  const kind = args?.task ? KINDS.find((k) => k.task === args.task) : await pickKind('Taskling: New Adapter');
  if (!kind) return undefined;
  const name = args?.name ?? await vscode.window.showInputBox({ title: `New ${taskTitle(kind.task).toLowerCase()} adapter`, prompt: 'Adapter name (shown in pickers)', value: `My ${taskTitle(kind.task).toLowerCase()} adapter`, validateInput: (v) => (v.trim() ? undefined : 'Give it a name') });
  if (!name) return undefined;
  const items = args?.items ?? parseItems(await vscode.window.showInputBox({ title: kind.ask, prompt: `${kind.ask} (you can edit them in the file later)`, placeHolder: kind.example }) ?? '');
  const id = adapterIdFrom(name);
  return writeAndOpen(adapterTemplate(kind.task, { id, name: name.trim(), items }), id);
}

/**
 * *Create Adapter from Selection…*: the selection is the sample; for classify the user picks the
 * label that fits it and it becomes the first example.
 */
export async function adapterFromSelection(args?: { task?: TaskKindName; name?: string; items?: string[]; sampleLabel?: string }): Promise<vscode.Uri | undefined> {
  const ed = vscode.window.activeTextEditor;
  if (!ed || ed.selection.isEmpty) {
    void vscode.window.showWarningMessage('Taskling: select a sample text in an editor first; it becomes the adapter\'s first example.');
    return undefined;
  }
  const sample = ed.document.getText(ed.selection);
  const kind = args?.task ? KINDS.find((k) => k.task === args.task) : await pickKind('Taskling: Create Adapter from Selection', ['classify', 'extract']);
  if (!kind) return undefined;
  const itemsText = args?.items ? args.items.join(', ') : await vscode.window.showInputBox({ title: kind.ask, prompt: kind.ask, placeHolder: kind.example, validateInput: (v) => (parseItems(v).length >= (kind.task === 'classify' ? 2 : 1) ? undefined : kind.task === 'classify' ? 'At least two labels' : 'At least one entity type') });
  if (itemsText === undefined) return undefined;
  const items = parseItems(itemsText);
  let sampleLabel = args?.sampleLabel;
  if (kind.task === 'classify' && !sampleLabel) sampleLabel = await vscode.window.showQuickPick(items, { title: 'Which label fits the selected text?', placeHolder: 'It becomes the first example (Escape: no example)' });
  const name = args?.name ?? await vscode.window.showInputBox({ title: 'Adapter name', value: `My ${taskTitle(kind.task).toLowerCase()} adapter`, validateInput: (v) => (v.trim() ? undefined : 'Give it a name') });
  if (!name) return undefined;
  const id = adapterIdFrom(name);
  return writeAndOpen(adapterTemplate(kind.task, { id, name: name.trim(), items, sample, sampleLabel }), id);
}
