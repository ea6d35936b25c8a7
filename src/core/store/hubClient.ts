/**
 * The few Hugging Face hub HTTP calls the model store needs, at the `fetch` level:
 *
 * - `GET {hubUrl}/api/models/{repo}/revision/{rev}`           -> `{ sha }` (branch/tag -> commit)
 * - `GET {hubUrl}/api/models/{repo}/tree/{sha}?recursive=true` -> file entries, paginated by `Link`
 * - `HEAD|GET {hubUrl}/{repo}/resolve/{sha}/{path}`            -> file bytes (Range-capable) with
 *   `X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size`.
 *
 * Why not `@huggingface/hub`'s `modelInfo` / `listFiles` / `downloadFile`? They do accept `hubUrl`
 * and `fetch`, but (2.17.5): their `HubApiError` keeps status and body and drops the response
 * headers, so `X-Error-Code: GatedRepo` / `RepoNotFound` cannot be told apart from any other 401;
 * `listFiles` puts the revision into the URL unencoded and does not report the commit it listed;
 * `downloadFile` has no Range resume / If-Range and may route through Xet. Three plain requests are
 * shorter than working around that.
 *
 * Every failure becomes a {@link TasklingError} whose message says what to do.
 */
import { TasklingError } from '../errors';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface HubClientOptions {
  /** Hub base URL, e.g. `https://huggingface.co` or a mirror (setting `taskling.hubUrl`). */
  hubUrl: string;
  /** Hugging Face access token for gated or private repos. */
  token?: string;
  /** Injectable fetch (tests, proxies); defaults to the global fetch. */
  fetch?: FetchLike;
}

/** One entry of the tree listing. `lfs` is present for files stored with Git LFS / Xet. */
export interface HubTreeEntry {
  type: 'file' | 'directory' | string;
  path: string;
  size: number;
  /** Git object id (sha1 of `blob <size>\0<content>` for files). */
  oid: string;
  lfs?: { oid: string; size: number; pointerSize?: number };
}

/** Headers of a resolve request (HEAD, redirects not followed). */
export interface HubFileHeaders {
  status: number;
  /** `X-Repo-Commit`: the commit the revision resolved to. */
  commit?: string;
  /** `X-Linked-Etag` (sha256 of LFS files) or `ETag`, without quotes. */
  etag?: string;
  /** `X-Linked-Size` or `Content-Length`. */
  size?: number;
  /** Redirect target for LFS files, if any. */
  location?: string;
}

const DEFAULT_HUB_URL = 'https://huggingface.co';
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'EHOSTDOWN',
  'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET',
]);

/** Strips trailing slashes; `''` or undefined gives https://huggingface.co. */
export function normalizeHubUrl(hubUrl: string | undefined): string {
  const u = (hubUrl ?? '').trim().replace(/\/+$/, '');
  return u || DEFAULT_HUB_URL;
}

/** Rejects repo ids that are not `owner/name` (they end up in file paths). */
export function checkRepoId(repo: string): void {
  if (!/^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(repo) || repo.includes('..')) {
    throw new TasklingError('INVALID_INPUT', `"${repo}" is not a hub model id of the form owner/name.`);
  }
}

/** `a/b c.json` -> `a/b%20c.json` (each segment encoded, slashes kept). */
function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** The system error code behind a failed fetch (`fetch failed` wraps it in `cause`). */
export function networkErrorCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let depth = 0; depth < 5 && cur && typeof cur === 'object'; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    const errors = (cur as { errors?: unknown }).errors; // AggregateError (happy eyeballs)
    if (Array.isArray(errors)) for (const inner of errors) { const c = networkErrorCode(inner); if (c) return c; }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

export function isAbortError(e: unknown): boolean {
  return !!e && typeof e === 'object' && ((e as Error).name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR');
}

/** The "no network" error: names the hub and says what to do instead. */
export function offlineError(hubUrl: string, detail: string, extra = ''): TasklingError {
  return new TasklingError(
    'OFFLINE',
    `No network: cannot reach ${hubUrl} (${detail}). ${extra}Choose a folder that already holds the model ` +
      `("Taskling: Set Up Model" -> choose folder), or set taskling.hubUrl to a hub mirror you can reach.`,
  );
}

export class HubClient {
  readonly hubUrl: string;
  private readonly token?: string;
  private readonly fetchImpl: FetchLike;

  constructor(opts: HubClientOptions) {
    this.hubUrl = normalizeHubUrl(opts.hubUrl);
    this.token = opts.token || undefined;
    this.fetchImpl = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  /** URL of a file at a revision (commit sha, branch or tag). */
  resolveUrl(repo: string, revision: string, path: string): string {
    return `${this.hubUrl}/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(path)}`;
  }

  /**
   * fetch with the token and the error mapping: network failures -> OFFLINE, abort -> rethrown
   * as is (the caller turns it into CANCELLED). HTTP errors are returned, see {@link httpError}.
   */
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token) headers.set('Authorization', `Bearer ${this.token}`);
    try {
      return await this.fetchImpl(url, { ...init, headers });
    } catch (e) {
      if (isAbortError(e)) throw e;
      const code = networkErrorCode(e);
      if (code) throw offlineError(this.hubUrl, code);
      throw new TasklingError('DOWNLOAD_FAILED', `Request to ${url} failed: ${(e as Error).message}. Check taskling.hubUrl and try again.`);
    }
  }

  /** Maps a non-OK response to a TasklingError with a what-to-do message. Consumes the body. */
  async httpError(res: Response, repo: string, what: string): Promise<TasklingError> {
    const code = res.headers.get('x-error-code') ?? '';
    const serverMsg = (res.headers.get('x-error-message') ?? (await res.text().catch(() => '')).slice(0, 200)).trim();
    const detail = `HTTP ${res.status}${code ? ` ${code}` : ''}${serverMsg ? `: ${serverMsg}` : ''}`;
    if ((res.status === 401 || res.status === 403) && code === 'GatedRepo') {
      return new TasklingError(
        'GATED_REPO',
        `${repo} is a gated repository (${detail}). Open ${this.hubUrl}/${repo} while signed in and accept the licence, ` +
          `then create a read access token (${this.hubUrl}/settings/tokens) and set it as Taskling's Hugging Face token; ` +
          `or choose a local folder that already holds the model.`,
      );
    }
    if (code === 'RepoNotFound' || (res.status === 404 && !code && what === 'revision')) {
      return new TasklingError(
        'DOWNLOAD_FAILED',
        `${repo} was not found on ${this.hubUrl} (${detail}). Check the model id and taskling.hubUrl; a private repo also needs an access token.`,
      );
    }
    if (code === 'RevisionNotFound') {
      return new TasklingError('DOWNLOAD_FAILED', `${what}: the revision does not exist in ${repo} (${detail}). Use "main" or an existing branch, tag or commit.`);
    }
    if (code === 'EntryNotFound' || res.status === 404) {
      return new TasklingError('DOWNLOAD_FAILED', `${what} was not found in ${repo} on ${this.hubUrl} (${detail}). The revision may not have this model variant; choose another variant or revision.`);
    }
    if (res.status === 401 || res.status === 403) {
      return new TasklingError(
        'DOWNLOAD_FAILED',
        `Access to ${repo} was refused (${detail}). Check Taskling's Hugging Face token (it may be missing, expired or lack read access), or choose a local folder that holds the model.`,
      );
    }
    if (res.status === 429) {
      return new TasklingError('DOWNLOAD_FAILED', `${this.hubUrl} is rate-limiting requests (${detail}). Wait a few minutes and try again; an access token raises the limit.`);
    }
    return new TasklingError('DOWNLOAD_FAILED', `${what} failed on ${this.hubUrl} (${detail}). Try again later, or set taskling.hubUrl to a mirror.`);
  }

  /**
   * Resolves a branch, tag or commit to the full commit sha. Falls back to the `X-Repo-Commit`
   * header of `config.json` for mirrors that serve files but not `/api/.../revision`.
   */
  async resolveRevision(repo: string, revision: string, signal?: AbortSignal): Promise<string> {
    checkRepoId(repo);
    const res = await this.request(`${this.hubUrl}/api/models/${repo}/revision/${encodeURIComponent(revision)}`, {
      headers: { Accept: 'application/json' },
      signal,
    });
    if (res.ok) {
      const body = (await res.json().catch(() => undefined)) as { sha?: unknown } | undefined;
      if (body && typeof body.sha === 'string' && /^[0-9a-f]{40}$/.test(body.sha)) return body.sha;
      throw new TasklingError('DOWNLOAD_FAILED', `${this.hubUrl} answered the revision request for ${repo}@${revision} without a commit sha; set taskling.hubUrl to a hub (or mirror) that serves the Hugging Face API.`);
    }
    if (res.status === 404 && !res.headers.get('x-error-code')) {
      await res.body?.cancel().catch(() => undefined);
      const head = await this.headFile(repo, revision, 'config.json', signal);
      if (head.commit && /^[0-9a-f]{40}$/.test(head.commit)) return head.commit;
      throw new TasklingError('DOWNLOAD_FAILED', `Cannot resolve ${repo}@${revision} on ${this.hubUrl}: neither the revision API nor X-Repo-Commit is available. Set taskling.hubUrl to a hub mirror that serves the Hugging Face API.`);
    }
    throw await this.httpError(res, repo, `Resolving revision "${revision}"`);
  }

  /** Lists every file of a revision (recursive), following the `Link: <...>; rel="next"` pages. */
  async listFiles(repo: string, revision: string, signal?: AbortSignal): Promise<HubTreeEntry[]> {
    checkRepoId(repo);
    let url: string | undefined = `${this.hubUrl}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
    const out: HubTreeEntry[] = [];
    for (let page = 0; url && page < 1000; page++) {
      const res = await this.request(url, { headers: { Accept: 'application/json' }, signal });
      if (!res.ok) throw await this.httpError(res, repo, `Listing the files of ${repo}@${revision}`);
      const items = (await res.json().catch(() => undefined)) as unknown;
      if (!Array.isArray(items)) {
        throw new TasklingError('DOWNLOAD_FAILED', `${this.hubUrl} returned a file listing for ${repo} that is not a JSON array; check taskling.hubUrl.`);
      }
      for (const it of items as HubTreeEntry[]) {
        if (it && typeof it.path === 'string' && typeof it.size === 'number') out.push(it);
      }
      url = nextLink(res.headers.get('link'), url);
    }
    return out;
  }

  /** HEAD of a file without following redirects: the hub's X-Repo-Commit / X-Linked-* headers. */
  async headFile(repo: string, revision: string, path: string, signal?: AbortSignal): Promise<HubFileHeaders> {
    const res = await this.request(this.resolveUrl(repo, revision, path), {
      method: 'HEAD',
      redirect: 'manual',
      headers: { 'Accept-Encoding': 'identity' },
      signal,
    });
    if (res.status >= 400) throw await this.httpError(res, repo, `${path}`);
    const size = res.headers.get('x-linked-size') ?? res.headers.get('content-length');
    return {
      status: res.status,
      commit: res.headers.get('x-repo-commit') ?? undefined,
      etag: unquoteEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag') ?? undefined),
      size: size !== null && size !== undefined ? Number(size) : undefined,
      location: res.headers.get('location') ?? undefined,
    };
  }
}

/** `"abc"` / `W/"abc"` -> `abc`. */
export function unquoteEtag(etag: string | undefined): string | undefined {
  if (!etag) return undefined;
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/** The `rel="next"` target of a Link header, resolved against the current URL. */
export function nextLink(header: string | null, base: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]+)>\s*;(.*)$/.exec(part.trim());
    if (m && /\brel="?next"?/.test(m[2])) return new URL(m[1], base).toString();
  }
  return undefined;
}
