/**
 * HTTP client for an OpenAI-compatible inference server (vLLM, SGLang, llama.cpp's server,
 * llama-cpp-python's server): JSON POSTs with a per-attempt timeout and retries with exponential
 * backoff (full jitter) on what is worth retrying — HTTP 408/409/429/5xx, connection
 * refused/reset, timeouts, and bodies that end early or are not JSON. Node's built-in fetch.
 *
 * Errors (TasklingError):
 * - `ENDPOINT_FAILED`: still failing after the last retry (the message names the URL, the last
 *   cause and how many attempts were made); retrying later may work (a resumed batch does).
 * - `ENDPOINT_REJECTED`: the server refused the request (HTTP 4xx other than 408/409/429); the
 *   message carries the server's own error text. Retrying the same request will not help.
 * - `CANCELLED` when the caller's signal aborts (never retried).
 */
import { CancelledError, TasklingError } from '../errors';
import { isAbortError, networkErrorCode } from '../store/hubClient';

/** Connection settings of an endpoint. */
export interface EndpointConfig {
  /** Base URL as the user gave it: `http://host:8000` or `http://host:8000/v1` (both mean `/v1`). */
  url: string;
  /** Bearer token (read from an environment variable by the caller; never from a settings file). */
  apiKey?: string;
  /** Per-attempt timeout, ms (default 120,000). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 5). */
  retries?: number;
  /** First backoff, ms; attempt n waits up to `backoffMs * 2^(n-1)`, capped at `maxBackoffMs` (default 500). */
  backoffMs?: number;
  /** Longest wait between attempts, ms, also the cap on a server's Retry-After (default 20,000). */
  maxBackoffMs?: number;
  /** Called before each retry (for progress on stderr). */
  onRetry?: (info: { path: string; attempt: number; delayMs: number; reason: string }) => void;
  /** Injectable for tests (default: global fetch). */
  fetch?: typeof fetch;
  /** Injectable for tests (default: Math.random). */
  random?: () => number;
}

/** `http://h:8000`, `http://h:8000/`, `http://h:8000/v1/` -> `http://h:8000/v1`. */
export function normalizeEndpointUrl(url: string): string {
  const u = url.trim().replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    throw new TasklingError('INVALID_REQUEST', `The endpoint ${JSON.stringify(url)} is not a URL; give the server's base URL, e.g. http://127.0.0.1:8000/v1.`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TasklingError('INVALID_REQUEST', `The endpoint ${JSON.stringify(url)} must start with http:// or https://.`);
  }
  if (parsed.username || parsed.password) {
    throw new TasklingError('INVALID_REQUEST', 'The endpoint URL must not contain a user name or password; put the API key in an environment variable and name it with --api-key-env.');
  }
  return /\/v1$/.test(u) ? u : `${u}/v1`;
}

/** Retryable failure of one attempt (internal). */
class Retryable extends Error {
  constructor(message: string, readonly retryAfterMs?: number) { super(message); }
}

const RETRY_STATUS = new Set([408, 409, 429, 500, 502, 503, 504]);

/** `Retry-After` in seconds or as an HTTP date, in ms; undefined when absent or unreadable. */
function retryAfter(h: string | null): number | undefined {
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const d = Date.parse(h);
  return Number.isFinite(d) ? Math.max(0, d - Date.now()) : undefined;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(new CancelledError()); return; }
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(new CancelledError()); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The server's error text from a JSON error body (`{error: {message}}`, `{error: "..."}`, `{detail}`), else the body itself (first 500 chars). */
function serverMessage(body: string): string {
  try {
    const v = JSON.parse(body) as { error?: unknown; detail?: unknown; message?: unknown };
    const e = v.error;
    if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message;
    if (typeof e === 'string') return e;
    if (typeof v.detail === 'string') return v.detail;
    if (v.detail !== undefined) return JSON.stringify(v.detail).slice(0, 500);
    if (typeof v.message === 'string') return v.message;
  } catch { /* not JSON */ }
  return body || '(empty body)';
}

/** {@link serverMessage} cut to 300 characters (validation errors can list every prompt token). */
function shortServerMessage(body: string): string {
  const m = withoutControls(serverMessage(body));
  return m.length > 300 ? `${m.slice(0, 300)}... (${m.length} characters)` : m;
}

/** Text from a server with its control characters (terminal escapes, line breaks) written as `\uXXXX`, for messages and logs. */
export function withoutControls(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One OpenAI-compatible server. Stateless apart from its settings; safe to share between concurrent requests. */
export class EndpointClient {
  /** Normalised base URL, ending in `/v1`. */
  readonly baseUrl: string;
  private readonly cfg: Required<Omit<EndpointConfig, 'apiKey' | 'onRetry'>> & Pick<EndpointConfig, 'apiKey' | 'onRetry'>;

  constructor(cfg: EndpointConfig) {
    this.baseUrl = normalizeEndpointUrl(cfg.url);
    this.cfg = {
      url: cfg.url, apiKey: cfg.apiKey, onRetry: cfg.onRetry,
      timeoutMs: cfg.timeoutMs ?? 120_000, retries: cfg.retries ?? 5, backoffMs: cfg.backoffMs ?? 500, maxBackoffMs: cfg.maxBackoffMs ?? 20_000,
      fetch: cfg.fetch ?? fetch, random: cfg.random ?? Math.random,
    };
  }

  /** Model ids the server lists (`GET /v1/models` -> `data[].id`). */
  async models(signal?: AbortSignal): Promise<string[]> {
    const v = await this.request('GET', '/models', undefined, signal) as { data?: { id?: unknown }[] };
    if (!v || !Array.isArray(v.data)) throw new TasklingError('ENDPOINT_FAILED', `${this.baseUrl}/models did not answer with a model list ({"data": [{"id": ...}]}); is this an OpenAI-compatible server?`);
    // Model names go into messages, logs and provenance: ones with control characters are refused.
    const ids = v.data.map((m) => m.id).filter((id): id is string => typeof id === 'string');
    const bad = ids.find((id) => withoutControls(id) !== id);
    if (bad !== undefined) throw new TasklingError('ENDPOINT_FAILED', `${this.baseUrl}/models lists a model name with control characters (${withoutControls(bad).slice(0, 120)}); give the model name with --model (taskling.endpoint.model).`);
    return ids;
  }

  /**
   * POSTs `body` as JSON to `path` (e.g. `/chat/completions`) and returns `check(answer)`.
   * `check` throws {@link malformed} when the answer lacks what the request needs; that attempt
   * is then retried like a malformed body.
   */
  post<T = unknown>(path: string, body: unknown, signal?: AbortSignal, check?: (answer: unknown) => T): Promise<T> {
    return this.request('POST', path, JSON.stringify(body), signal, check) as Promise<T>;
  }

  private async request(method: 'GET' | 'POST', path: string, body: string | undefined, signal?: AbortSignal, check?: (answer: unknown) => unknown): Promise<unknown> {
    const url = this.baseUrl + path;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.cfg.apiKey) headers.authorization = `Bearer ${this.cfg.apiKey}`;
    const attempts = this.cfg.retries + 1;
    let last = '';
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw new CancelledError();
      const timeout = AbortSignal.timeout(this.cfg.timeoutMs);
      const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
      try {
        const answer = await this.once(method, url, headers, body, both, timeout);
        return check ? check(answer) : answer;
      } catch (e) {
        if (signal?.aborted) throw new CancelledError();
        if (!(e instanceof Retryable)) throw e;
        last = e.message;
        if (attempt >= attempts) {
          throw new TasklingError('ENDPOINT_FAILED', `${method} ${url} failed ${attempts} time${attempts === 1 ? '' : 's'}; the last: ${last}. Check that the server is running and reachable; a batch with --output continues where it stopped when run again.`);
        }
        const cap = Math.min(this.cfg.maxBackoffMs, this.cfg.backoffMs * 2 ** (attempt - 1));
        const delayMs = Math.min(this.cfg.maxBackoffMs, e.retryAfterMs ?? Math.round(cap * (0.5 + this.cfg.random() / 2)));
        this.cfg.onRetry?.({ path, attempt, delayMs, reason: last });
        await sleep(delayMs, signal);
      }
    }
  }

  /** One attempt: the parsed JSON, or Retryable / TasklingError('ENDPOINT_REJECTED'). */
  private async once(method: string, url: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal, timeout: AbortSignal): Promise<unknown> {
    let res: Response;
    let text: string;
    try {
      // Redirects are not followed: the text would go to a host other than the endpoint that was set
      // (and that provenance names).
      res = await this.cfg.fetch(url, { method, headers, body, signal, redirect: 'manual' });
      text = await res.text();
    } catch (e) {
      if (timeout.aborted) throw new Retryable(`no complete answer within ${this.cfg.timeoutMs} ms (timeout)`);
      if (isAbortError(e)) throw e;
      const code = networkErrorCode(e) ?? (e as { cause?: { code?: string } }).cause?.code;
      const cause = (e as { cause?: Error }).cause?.message;
      throw new Retryable(`connection failed (${[code, cause ?? (e as Error).message].filter(Boolean).join(': ')})`);
    }
    if (res.status >= 300 && res.status < 400) {
      const to = res.headers.get('location');
      throw new TasklingError('ENDPOINT_REJECTED', `The server at ${url} answered HTTP ${res.status}, a redirect${to ? ` to ${JSON.stringify(to.slice(0, 200))}` : ''}. Taskling does not follow redirects (the text would go to another address than the endpoint set); set the endpoint URL to the server's own base URL.`);
    }
    if (!res.ok) {
      const msg = shortServerMessage(text);
      if (RETRY_STATUS.has(res.status)) throw new Retryable(`HTTP ${res.status}: ${msg}`, retryAfter(res.headers.get('retry-after')));
      const hint = res.status === 401 || res.status === 403 ? ' Check the API key (--api-key-env names the environment variable that holds it).'
        : res.status === 404 ? ' Check the endpoint URL (it should be the server\'s base URL, e.g. http://127.0.0.1:8000/v1) and the model name (--model).' : '';
      throw new TasklingError('ENDPOINT_REJECTED', `The server at ${url} refused the request: HTTP ${res.status}: ${msg}.${hint}`);
    }
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Retryable(`the answer is not JSON (${(e as Error).message}; ${text.length} bytes, starting ${JSON.stringify(text.slice(0, 80))})`);
    }
  }
}

/** Marks an answer that parsed as JSON but lacks what the request needs (retried like a malformed body). */
export function malformed(what: string): Retryable {
  return new Retryable(what);
}

/** True for the errors {@link EndpointClient} retries; lets callers retry on shape errors too. */
export function isRetryable(e: unknown): e is Error {
  return e instanceof Retryable;
}
