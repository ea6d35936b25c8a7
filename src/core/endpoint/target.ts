/**
 * Where a task runs when it runs on an inference server: the one place that turns a target (the
 * CLI's `--endpoint` options, or the editor's `taskling.endpoint.*` settings) into a client and
 * task settings, checked before any text is sent. The CLI (`src/cli/endpoint.ts`) and the editor
 * (`src/host/endpointService.ts`) both call {@link prepareEndpoint} then {@link resolveEndpointModel};
 * with no target, they run the local engine.
 */
import { TasklingError } from '../errors';
import type { GemmaTokenizer } from '../tokenizer';
import { EndpointClient, type EndpointConfig } from './client';
import { scoringFor, type ClassifyScoring, type EndpointTaskSettings, type ExactPrompt, type StructuredOutputField } from './tasks';

/** Node's fetch (undici) ends any answer whose headers take longer than 300 s, whatever is set. */
export const MAX_ENDPOINT_TIMEOUT_SECONDS = 300;

/** What a caller knows about the server before connecting. */
export interface EndpointTarget {
  /** Base URL (`http://host:8000` or `.../v1`). */
  url: string;
  /** The server's model name; empty/undefined = the only one `GET /v1/models` lists. */
  model?: string;
  /** Bearer token (from an environment variable or the editor's SecretStorage; never from a settings file). */
  apiKey?: string;
  /** Per-attempt timeout, seconds, in (0, 300] (default 120). */
  timeoutSeconds?: number;
  /** Retries after the first attempt (default 5). */
  retries?: number;
  tokenizer?: GemmaTokenizer;
  classifyScoring?: ClassifyScoring;
  structuredOutput?: StructuredOutputField;
  exactPrompt?: ExactPrompt;
  maxNewTokens?: number;
  onRetry?: EndpointConfig['onRetry'];
}

/** A target checked and connected (the model name may still be empty until {@link resolveEndpointModel}). */
export interface PreparedEndpoint {
  client: EndpointClient;
  settings: EndpointTaskSettings;
}

/**
 * Checks a target without sending anything: the URL (http/https, no user:password), the timeout,
 * and for exact classify scoring that a tokenizer is given.
 * @throws TasklingError `INVALID_REQUEST` with what to change.
 */
export function prepareEndpoint(t: EndpointTarget): PreparedEndpoint {
  const timeout = t.timeoutSeconds ?? 120;
  if (!(timeout > 0 && timeout <= MAX_ENDPOINT_TIMEOUT_SECONDS)) {
    throw new TasklingError('INVALID_REQUEST', `The endpoint timeout must be more than 0 and at most ${MAX_ENDPOINT_TIMEOUT_SECONDS} seconds (Node's fetch ends slower answers), got ${timeout}.`);
  }
  const client = new EndpointClient({ url: t.url, apiKey: t.apiKey, timeoutMs: timeout * 1000, retries: t.retries, onRetry: t.onRetry });
  const settings: EndpointTaskSettings = {
    model: t.model?.trim() ?? '', tokenizer: t.tokenizer, classifyScoring: t.classifyScoring ?? 'auto',
    structuredOutput: t.structuredOutput ?? 'response_format', maxNewTokens: t.maxNewTokens, exactPrompt: t.exactPrompt,
  };
  if (settings.classifyScoring === 'exact') scoringFor(settings);
  return { client, settings };
}

/**
 * Fills `settings.model` when empty with the only model the server lists (one `GET /v1/models`).
 * @throws TasklingError `INVALID_REQUEST` when the server lists none or several (the message
 *   names them and says to set the model name); `ENDPOINT_FAILED` / `ENDPOINT_REJECTED` from the client.
 */
export async function resolveEndpointModel(p: PreparedEndpoint, how = '--model NAME', signal?: AbortSignal): Promise<string> {
  if (p.settings.model) return p.settings.model;
  const ids = await p.client.models(signal);
  if (ids.length === 1) {
    p.settings.model = ids[0];
    return ids[0];
  }
  throw new TasklingError('INVALID_REQUEST', ids.length
    ? `The server at ${p.client.baseUrl} serves ${ids.length} models (${ids.slice(0, 10).join(', ')}); choose one with ${how}.`
    : `The server at ${p.client.baseUrl} lists no models; give the model name with ${how}.`);
}

/** Whether the URL's host is this machine (localhost, 127.0.0.0/8, ::1). @throws nothing (false for a non-URL). */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try { host = new URL(url).hostname; } catch { return false; }
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

export { endpointLabel } from '../../shared/where';
