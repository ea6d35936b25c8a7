/**
 * Tasks on an OpenAI-compatible inference server from the editor (`taskling.endpoint.*`).
 * Opt-in: with `taskling.endpoint.url` empty (the default) nothing here sends anything and tasks
 * run on this machine. {@link EngineService} asks {@link settings} on every run and evaluation
 * and hands the work here when an endpoint is set; the connection is made by core's
 * `prepareEndpoint` / `resolveEndpointModel`, the same code `taskling run --endpoint` uses.
 *
 * - Trust: settings from an untrusted workspace are ignored (config.ts `readEndpointSettings`).
 * - API key: SecretStorage (commands "Set Endpoint API Key…" / "Clear Endpoint API Key", one key
 *   per server URL) or the environment variable `taskling.endpoint.apiKeyEnv` names; never a
 *   settings file.
 * - First use of a URL in a workspace asks before any text is sent (Continue / Always for this
 *   workspace / Cancel); "Always" is remembered in workspaceState for that URL.
 * - Errors come back as WorkerCallError with the editor's advice (logic/endpoint.ts).
 */
import * as vscode from 'vscode';
import type { TaskAdapter } from '../core/adapters/manifest';
import { TasklingError } from '../core/errors';
import type { EvalReport } from '../core/eval';
import { parseEvalRecords } from '../core/eval';
import { endpointLabel, evaluateOnEndpointWith, isLoopbackUrl, normalizeEndpointUrl, prepareEndpoint, refuseRunTimeLora, resolveEndpointModel, runEndpointTask, type PreparedEndpoint } from '../core/endpoint';
import { WorkerCallError } from '../worker/client';
import { readEndpointSettings } from './config';
import { chooseApiKey, endpointErrorAdvice, secretKeyFor, type EndpointSettings } from './logic/endpoint';

const CONFIRMED_KEY = 'taskling.endpoint.confirmedUrls';

/** What the first-use question offers. */
export const CONFIRM_ACTIONS = { continue: 'Continue', always: 'Always for this workspace' } as const;

export class EndpointService {
  private cached: { key: string; target: string; prepared: PreparedEndpoint } | undefined;
  private warnedIgnored = '';
  /** Test hook: answers the first-use question instead of a modal dialog (undefined = ask the user). */
  confirmAnswer: string | undefined | ((message: string) => string | undefined);
  /** Last first-use question asked (tests read it). */
  lastConfirmation: string | undefined;

  constructor(private readonly context: vscode.ExtensionContext, private readonly log: vscode.LogOutputChannel) {}

  /** The endpoint tasks run on now, or undefined when they run on this machine. */
  settings(): EndpointSettings | undefined {
    const r = readEndpointSettings();
    const ignored = r.ignored.join(', ');
    if (ignored && ignored !== this.warnedIgnored) {
      this.log.warn(`[endpoint] this workspace is not trusted: its values of ${ignored} are ignored (user settings only)`);
    }
    this.warnedIgnored = ignored;
    return r.settings;
  }

  /** "via URL (model NAME)" for the current settings (the model as resolved once known). */
  label(s: EndpointSettings): string {
    let url = s.url;
    try { url = normalizeEndpointUrl(s.url); } catch { /* shown as set; the run says what is wrong */ }
    const model = this.cached?.target === JSON.stringify([s.url, s.model]) ? this.cached.prepared.settings.model : s.model;
    return endpointLabel(url, model);
  }

  /**
   * Connects: key, client, model name (one GET /v1/models when the model setting is empty).
   * Cached per URL, model, timeout and key.
   * @throws WorkerCallError with the editor's advice.
   */
  async prepare(s: EndpointSettings, signal?: AbortSignal): Promise<PreparedEndpoint> {
    return this.guard(async () => {
      const stored = await this.context.secrets.get(secretKeyFor(s.url));
      const k = chooseApiKey({ stored, apiKeyEnv: s.apiKeyEnv, env: process.env });
      if (k.problem) throw new TasklingError('INVALID_REQUEST', k.problem);
      const key = JSON.stringify([s.url, s.model, s.timeoutSeconds, k.key ?? '']);
      if (this.cached?.key === key) return this.cached.prepared;
      const prepared = prepareEndpoint({ url: s.url, model: s.model, apiKey: k.key, timeoutSeconds: s.timeoutSeconds, structuredOutput: 'response_format' });
      await resolveEndpointModel(prepared, 'the setting taskling.endpoint.model', signal);
      this.log.info(`[endpoint] ${endpointLabel(prepared.client.baseUrl, prepared.settings.model)}; API key: ${k.source === 'none' ? 'none' : k.source === 'secretStorage' ? 'from SecretStorage' : `from $${s.apiKeyEnv}`}`);
      this.cached = { key, target: JSON.stringify([s.url, s.model]), prepared };
      return prepared;
    });
  }

  /**
   * Asks before the first text goes to `url` in this workspace. Resolves true to go on.
   */
  async confirm(s: EndpointSettings, what: string): Promise<boolean> {
    // Asked before any request (not even GET /v1/models with the key goes out first).
    const url = this.guardSync(() => normalizeEndpointUrl(s.url));
    const remembered = this.context.workspaceState.get<string[]>(CONFIRMED_KEY, []);
    if (remembered.includes(url)) return true;
    const where = isLoopbackUrl(url) ? 'a server on this machine' : `${new URL(url).host}`;
    const model = s.model ? `model ${s.model}` : 'the model the server lists';
    const message = `Taskling: ${what} will be sent to ${url} (${model}, ${where}) because taskling.endpoint.url is set. Continue?`;
    this.lastConfirmation = message;
    const pick = typeof this.confirmAnswer === 'function' ? this.confirmAnswer(message)
      : this.confirmAnswer ?? await vscode.window.showWarningMessage(message, { modal: true, detail: 'Clear taskling.endpoint.url to keep every text on this machine.' }, CONFIRM_ACTIONS.continue, CONFIRM_ACTIONS.always);
    if (pick === CONFIRM_ACTIONS.always) await this.context.workspaceState.update(CONFIRMED_KEY, [...remembered, url]);
    return pick === CONFIRM_ACTIONS.continue || pick === CONFIRM_ACTIONS.always;
  }

  /**
   * Runs `adapter` on `text` on the endpoint (after the first-use question).
   * @returns core's TaskResult with `provenance.endpoint = {url, model, requests, scoring?}`.
   * @throws WorkerCallError: `CANCELLED` (signal, or the question declined), `ENDPOINT_FAILED`,
   *   `ENDPOINT_REJECTED`, `ENDPOINT_OUTPUT_INVALID`, `INVALID_INPUT`, `INVALID_REQUEST`.
   */
  async run(s: EndpointSettings, adapter: TaskAdapter, text: string, signal: AbortSignal): Promise<unknown> {
    this.guardSync(() => refuseRunTimeLora(adapter));
    if (!await this.confirm(s, 'The selected text')) throw new WorkerCallError('CANCELLED', 'Nothing was sent.');
    const p = await this.prepare(s, signal);
    return this.guard(() => runEndpointTask(p.client, adapter, text, p.settings, { signal }));
  }

  /**
   * Evaluates `adapter` on labelled JSONL `data` through the endpoint, `concurrency` requests in flight.
   * @returns core/eval's EvalReport (`model.variant` "endpoint", `model.dir` the URL).
   */
  async evaluate(s: EndpointSettings, adapter: TaskAdapter, data: string, file: { name: string; sha256: string }, signal: AbortSignal, onProgress?: (done: number, total: number) => void): Promise<EvalReport> {
    this.guardSync(() => refuseRunTimeLora(adapter));
    const parsed = parseEvalRecords(data, adapter);
    if (!await this.confirm(s, `The ${parsed.records.length} texts of ${file.name}`)) throw new WorkerCallError('CANCELLED', 'Nothing was sent.');
    const p = await this.prepare(s, signal);
    return this.guard(() => evaluateOnEndpointWith(p, s.concurrency, adapter, parsed, file, { signal, onRecord: (done, total) => onProgress?.(done, total) }));
  }

  /** "Taskling: Set Endpoint API Key…": stores the key for the current URL in SecretStorage. */
  async setApiKey(): Promise<boolean> {
    const s = this.settings();
    if (!s) {
      void vscode.window.showWarningMessage('Taskling: set taskling.endpoint.url first (the key is stored for that server).', 'Open Settings')
        .then((a) => { if (a) void vscode.commands.executeCommand('workbench.action.openSettings', 'taskling.endpoint'); });
      return false;
    }
    let id: string;
    try { id = secretKeyFor(s.url); } catch (e) {
      void vscode.window.showErrorMessage(`Taskling: ${(e as Error).message}`);
      return false;
    }
    const key = await vscode.window.showInputBox({
      title: `Taskling: API key for ${s.url}`, password: true, ignoreFocusOut: true,
      prompt: 'Stored in VS Code\'s SecretStorage (the OS keychain), never in a settings file; sent only to this URL.',
      validateInput: (v) => (v.trim() ? undefined : 'Enter the key, or press Escape'),
    });
    if (!key?.trim()) return false;
    await this.context.secrets.store(id, key.trim());
    this.cached = undefined;
    void vscode.window.showInformationMessage(`Taskling: API key stored for ${s.url}.`);
    return true;
  }

  /** "Taskling: Clear Endpoint API Key": removes the stored key for the current URL. */
  async clearApiKey(): Promise<boolean> {
    const s = this.settings();
    if (!s) return false;
    await this.context.secrets.delete(secretKeyFor(s.url));
    this.cached = undefined;
    void vscode.window.showInformationMessage(`Taskling: API key for ${s.url} removed.`);
    return true;
  }

  /** Core errors as the WorkerCallError the rest of the host handles, with the editor's advice. */
  private async guard<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw asCallError(e);
    }
  }

  /** {@link guard} for synchronous checks. */
  private guardSync<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw asCallError(e);
    }
  }
}

function asCallError(e: unknown): WorkerCallError {
  if (e instanceof WorkerCallError) return e;
  const code = e instanceof TasklingError ? e.code : 'INTERNAL';
  if (code === 'CANCELLED') return new WorkerCallError('CANCELLED', 'The run was cancelled.');
  return new WorkerCallError(code, endpointErrorAdvice(code, e instanceof Error ? e.message : String(e)));
}
