/**
 * Downloads one variant of a hub model into the extension's global storage, resumably:
 *
 * ```
 * <destRoot>/.partial/<owner>__<name>@<sha>/<path>.part   bytes so far (+ <path>.part.json: ETag for If-Range)
 * <destRoot>/<owner>__<name>/<sha>/...                    complete folders, each with taskling-download.json
 * ```
 *
 * 1. The requested revision (default "main") is resolved to a commit sha first, so every byte of
 *    one download comes from the same commit and the partial folder is keyed by it.
 * 2. The tree listing at that sha gives each file's size and hash. Every file is fetched with
 *    `Range: bytes=<have>-` (+ `If-Range: <etag>`) while hashing the stream; a resumed file has
 *    its existing part hashed first. A dropped connection is retried (resuming) a few times.
 * 3. Verification: LFS files (the ONNX graphs, weights, tokenizer.json) must match `lfs.size` and
 *    the sha256 in `lfs.oid`. Small non-LFS files (JSON configs) must match `size` and their git
 *    blob id (`oid` = sha1 of `blob <size>\0<content>`), which costs one extra sha1 of a few KB.
 *    The record stores sha256 and size of every file either way.
 * 4. The folder is checked with readModelFolder, the record written, and the folder renamed into
 *    place in one step. When the sha's folder already exists (another variant was downloaded
 *    before), the new files are renamed into it one by one and the record is rewritten
 *    atomically (temp file + rename) last: a folder counts as complete only when its record lists
 *    the variant.
 *
 * Not handled: two concurrent downloads of the same repo@sha into one destRoot (the caller runs one
 * at a time), free-disk-space checks, Xet-only hub files without an HTTP resolve URL.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate, writeFile, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CancelledError, TasklingError } from '../errors';
import { graphFileName, readModelFolder, type ModelVariant } from '../model/modelFolder';
import { defaultVariantFiles, type CatalogFile } from './catalog';
import { HubClient, checkRepoId, isAbortError, networkErrorCode, offlineError, unquoteEtag, type FetchLike, type HubTreeEntry } from './hubClient';

export const RECORD_FILE = 'taskling-download.json';
export const PARTIAL_DIR = '.partial';

export interface DownloadProgress {
  /** Path of the file being fetched, relative to the model folder. */
  file: string;
  /** Bytes of the whole download present so far (resumed parts included). */
  bytes: number;
  totalBytes: number;
  /** Bytes of `file` present so far. */
  fileBytes: number;
  fileTotal: number;
  /** Network speed over the last few seconds (resumed bytes not counted). */
  bytesPerSecond: number;
}

export interface DownloadOptions {
  /** Hub base URL (setting `taskling.hubUrl`); mirrors work if they serve the same paths. */
  hubUrl: string;
  /** `owner/name`, e.g. onnx-community/gemma-3-270m-it-ONNX. */
  repo: string;
  /** Branch, tag or commit; default "main". */
  revision?: string;
  variant: ModelVariant;
  /** Extension global storage (or any folder); created when missing. */
  destRoot: string;
  signal?: AbortSignal;
  onProgress?(p: DownloadProgress): void;
  fetch?: FetchLike;
  /** Hugging Face access token, for gated or private repos. */
  token?: string;
  /** Files to fetch (e.g. from the catalog); default {@link defaultVariantFiles}. */
  files?: CatalogFile[];
  /** Retries after a dropped connection or a 5xx, each resuming the partial file (default 5). */
  maxRetries?: number;
  /** Delay before retry n is n * retryDelayMs (default 1000). */
  retryDelayMs?: number;
  /** Minimum interval between progress callbacks in ms (default 200; file ends always report). */
  progressIntervalMs?: number;
}

export interface DownloadedFile {
  path: string;
  size: number;
  sha256: string;
  /** Git blob id, for files not stored in LFS. */
  gitOid?: string;
  lfs: boolean;
}

/** Contents of `taskling-download.json`. */
export interface DownloadRecord {
  format: 1;
  repo: string;
  hubUrl: string;
  /** Revision as requested (branch, tag or commit). */
  revision: string;
  /** Commit sha the revision resolved to. */
  sha: string;
  /** Variants whose files are all present. */
  variants: ModelVariant[];
  files: DownloadedFile[];
  finishedAt: string;
}

export interface DownloadResult {
  /** `<destRoot>/<owner>__<name>/<sha>`. */
  dir: string;
  /** The resolved commit sha. */
  revision: string;
  requestedRevision: string;
  files: DownloadedFile[];
  /** True when everything was already present and nothing was fetched. */
  reused: boolean;
}

export interface DownloadedModel {
  dir: string;
  repo: string;
  revision: string;
  sha: string;
  hubUrl: string;
  variants: ModelVariant[];
  finishedAt: string;
  files: DownloadedFile[];
}

/** `owner/name` -> `owner__name`. */
export function repoDirName(repo: string): string {
  return repo.replace('/', '__');
}

export function modelDirFor(destRoot: string, repo: string, sha: string): string {
  return join(destRoot, repoDirName(repo), sha);
}

export function partialDirFor(destRoot: string, repo: string, sha: string): string {
  return join(destRoot, PARTIAL_DIR, `${repoDirName(repo)}@${sha}`);
}

function mb(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`;
}

function safeRelPath(p: string): boolean {
  return !!p && !p.startsWith('/') && !p.includes('\\') && !p.split('/').some((s) => s === '..' || s === '.' || s === '');
}

/** Reads a record; undefined when missing or unreadable. */
export function readDownloadRecord(dir: string): DownloadRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(join(dir, RECORD_FILE), 'utf8')) as DownloadRecord;
    if (r && r.format === 1 && typeof r.sha === 'string' && Array.isArray(r.files) && Array.isArray(r.variants)) return r;
  } catch {
    /* missing or corrupt: not a complete download */
  }
  return undefined;
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, path);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(signal?.reason ?? new Error('aborted')); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Progress bookkeeping: total bytes present, network speed over a sliding window. */
class ProgressMeter {
  private bytes = 0;
  private net = 0;
  private samples: [number, number][] = [];
  private lastEmit = 0;
  constructor(private readonly totalBytes: number, private readonly intervalMs: number, private readonly cb?: (p: DownloadProgress) => void) {}

  add(n: number, fromNetwork: boolean): void {
    this.bytes += n;
    if (fromNetwork) this.net += n;
  }
  /** Forget bytes of a file that restarts from zero. */
  remove(n: number): void {
    this.bytes -= n;
  }
  emit(file: string, fileBytes: number, fileTotal: number, force = false): void {
    if (!this.cb) return;
    const now = Date.now();
    this.samples.push([now, this.net]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
    if (!force && now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    const [t0, n0] = this.samples[0];
    const dt = (now - t0) / 1000;
    const bytesPerSecond = dt > 0.05 ? Math.round((this.net - n0) / dt) : 0;
    this.cb({ file, bytes: this.bytes, totalBytes: this.totalBytes, fileBytes, fileTotal, bytesPerSecond });
  }
}

/** Picks the tree entries a variant needs; extra `<graph>_data_N` files come from the listing. */
function selectFiles(tree: HubTreeEntry[], wanted: CatalogFile[], variant: ModelVariant, repo: string, sha: string, hubUrl: string): HubTreeEntry[] {
  const byPath = new Map(tree.filter((e) => e.type !== 'directory').map((e) => [e.path, e]));
  const out: HubTreeEntry[] = [];
  const seen = new Set<string>();
  const missing: string[] = [];
  for (const f of wanted) {
    const e = byPath.get(f.path);
    if (!e) { if (!f.optional) missing.push(f.path); continue; }
    if (!seen.has(e.path)) { out.push(e); seen.add(e.path); }
  }
  const graph = `onnx/${graphFileName(variant)}`;
  const extra = new RegExp(`^${graph.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_data(_\\d+)?$`);
  for (const e of byPath.values()) if (extra.test(e.path) && !seen.has(e.path)) { out.push(e); seen.add(e.path); }
  if (missing.length) {
    throw new TasklingError(
      'DOWNLOAD_FAILED',
      `${repo} at ${sha.slice(0, 12)} on ${hubUrl} has no ${missing.join(', ')}: this revision does not provide the "${variant}" variant. Choose another variant or revision.`,
    );
  }
  for (const e of out) {
    if (!safeRelPath(e.path)) throw new TasklingError('DOWNLOAD_FAILED', `The file listing of ${repo} holds an unsafe path "${e.path}"; refusing to download.`);
  }
  return out;
}

function expectedOf(e: HubTreeEntry): { size: number; sha256?: string; gitOid?: string; lfs: boolean } {
  if (e.lfs && typeof e.lfs.oid === 'string') return { size: e.lfs.size ?? e.size, sha256: e.lfs.oid.toLowerCase(), lfs: true };
  return { size: e.size, gitOid: typeof e.oid === 'string' && /^[0-9a-f]{40}$/.test(e.oid) ? e.oid : undefined, lfs: false };
}

/** Hashes the existing bytes of a part file (resume), checking for cancellation between chunks. */
async function hashExisting(path: string, hashes: Hash[], signal?: AbortSignal): Promise<void> {
  const stream = createReadStream(path, { highWaterMark: 4 * 1024 * 1024 });
  try {
    for await (const chunk of stream) {
      if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
      for (const h of hashes) h.update(chunk as Buffer);
    }
  } finally {
    stream.destroy();
  }
}

interface FileJob {
  entry: HubTreeEntry;
  partialDir: string;
  client: HubClient;
  repo: string;
  sha: string;
  meter: ProgressMeter;
  signal?: AbortSignal;
  maxRetries: number;
  retryDelayMs: number;
}

class RetryableError extends Error {}

/** Downloads (or resumes) one file into `<partialDir>/<path>.part` and verifies it. */
async function downloadFile(job: FileJob): Promise<DownloadedFile> {
  const { entry, partialDir, client, repo, sha, meter, signal } = job;
  const exp = expectedOf(entry);
  const partPath = join(partialDir, `${entry.path}.part`);
  const metaPath = `${partPath}.json`;
  await mkdir(dirname(partPath), { recursive: true });

  let sha256 = createHash('sha256');
  let sha1 = exp.gitOid ? createHash('sha1').update(`blob ${exp.size}\0`) : undefined;
  const resetHashes = (): void => {
    sha256 = createHash('sha256');
    sha1 = exp.gitOid ? createHash('sha1').update(`blob ${exp.size}\0`) : undefined;
  };
  let have = existsSync(partPath) ? statSync(partPath).size : 0;
  if (have > exp.size) { await truncate(partPath, 0); have = 0; }
  let etag: string | undefined;
  try { etag = (JSON.parse(await readFile(metaPath, 'utf8')) as { etag?: string }).etag; } catch { etag = undefined; }
  if (have > 0) {
    try {
      await hashExisting(partPath, sha1 ? [sha256, sha1] : [sha256], signal);
    } catch (e) {
      if (signal?.aborted || isAbortError(e)) throw new CancelledError(`Download cancelled while checking the partial ${entry.path}; the data is kept in ${partialDir}.`);
      throw e;
    }
  }
  meter.add(have, false);
  meter.emit(entry.path, have, exp.size, true);

  const url = client.resolveUrl(repo, sha, entry.path);
  let failures = 0;
  while (have < exp.size) {
    let fh: Awaited<ReturnType<typeof open>> | undefined;
    try {
      const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
      if (have > 0) {
        headers.Range = `bytes=${have}-`;
        if (etag) headers['If-Range'] = `"${etag}"`;
      }
      let res: Response;
      try {
        res = await client.request(url, { headers, signal });
      } catch (e) {
        if (e instanceof TasklingError && e.code === 'OFFLINE') throw new RetryableError(e.message);
        throw e;
      }
      if (res.status >= 500 || res.status === 408) {
        await res.body?.cancel().catch(() => undefined);
        throw new RetryableError(`HTTP ${res.status}`);
      }
      let restart = false;
      if (res.status === 206) {
        const m = /bytes\s+(\d+)-/.exec(res.headers.get('content-range') ?? '');
        if (!m || Number(m[1]) !== have) restart = true;
      } else if (res.status === 200) {
        restart = have > 0; // Range ignored or If-Range failed: the server sends the whole file
      } else if (res.status === 416) {
        await res.body?.cancel().catch(() => undefined);
        meter.remove(have);
        await truncate(partPath, 0);
        have = 0;
        resetHashes();
        etag = undefined;
        throw new RetryableError('HTTP 416');
      } else {
        throw await client.httpError(res, repo, entry.path);
      }
      if (restart) {
        if (res.status === 206) { await res.body?.cancel().catch(() => undefined); }
        meter.remove(have);
        await truncate(partPath, 0);
        have = 0;
        resetHashes();
        if (res.status === 206) { etag = undefined; continue; }
      }
      const newEtag = res.headers.get('etag');
      if (newEtag && !newEtag.startsWith('W/')) {
        const clean = unquoteEtag(newEtag);
        if (clean !== etag) { etag = clean; await writeFile(metaPath, JSON.stringify({ etag, url })); }
      }
      if (!res.body) throw new RetryableError('empty response body');
      fh = await open(partPath, have > 0 ? 'a' : 'w');
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (have + value.byteLength > exp.size) {
            throw new TasklingError(
              'HASH_MISMATCH',
              `${entry.path} from ${client.hubUrl} is longer than the ${exp.size} bytes the file listing gives; the ${mb(have)} received so far are kept in ${partPath}. Delete that file and download again, or check taskling.hubUrl.`,
              partPath,
            );
          }
          await fh.write(value);
          sha256.update(value);
          sha1?.update(value);
          have += value.byteLength;
          meter.add(value.byteLength, true);
          meter.emit(entry.path, have, exp.size);
          if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
        }
      } catch (e) {
        await reader.cancel().catch(() => undefined);
        if (e instanceof TasklingError || isAbortError(e) || signal?.aborted) throw e;
        throw new RetryableError(`connection dropped (${(e as Error).message}${networkErrorCode(e) ? ` ${networkErrorCode(e)}` : ''})`);
      }
      if (have < exp.size) throw new RetryableError(`the response ended after ${have} of ${exp.size} bytes`);
    } catch (e) {
      if (signal?.aborted || isAbortError(e)) {
        throw new CancelledError(
          `Download cancelled at ${entry.path} (${mb(have)} of ${mb(exp.size)}). The data downloaded so far is kept in ${partialDir}; downloading again resumes from there.`,
        );
      }
      if (!(e instanceof RetryableError)) throw e;
      failures++;
      if (failures > job.maxRetries) {
        const kept = `${mb(have)} of ${entry.path} and the files finished before are kept in ${partialDir}; downloading again resumes from there. `;
        const code = /No network|ECONN|ENOTFOUND|EAI_AGAIN|UNREACH/.test(e.message) ? 'offline' : 'failed';
        if (code === 'offline') throw offlineError(client.hubUrl, `gave up after ${job.maxRetries} retries`, kept);
        throw new TasklingError('DOWNLOAD_FAILED', `Downloading ${entry.path} from ${client.hubUrl} failed ${failures} times (last: ${e.message}). ${kept}Try again later, or set taskling.hubUrl to a mirror.`, partPath);
      }
      try {
        await sleep(job.retryDelayMs * failures, signal);
      } catch {
        throw new CancelledError(`Download cancelled at ${entry.path} (${mb(have)} of ${mb(exp.size)}). The data downloaded so far is kept in ${partialDir}; downloading again resumes from there.`);
      }
    } finally {
      await fh?.close();
    }
  }
  meter.emit(entry.path, have, exp.size, true);

  const actual256 = sha256.digest('hex');
  const actualOid = sha1?.digest('hex');
  const mismatch = exp.sha256 && actual256 !== exp.sha256 ? { kind: 'sha256', expected: exp.sha256, actual: actual256 }
    : exp.gitOid && actualOid !== exp.gitOid ? { kind: 'git blob id', expected: exp.gitOid, actual: actualOid! } : undefined;
  if (mismatch) {
    const kept = join(partialDir, `${entry.path}.mismatch`);
    await rename(partPath, kept);
    await rm(metaPath, { force: true });
    throw new TasklingError(
      'HASH_MISMATCH',
      `${entry.path} does not match the hub's ${mismatch.kind}: expected ${mismatch.expected}, got ${mismatch.actual}. ` +
        `The downloaded data is kept in ${kept} for inspection; downloading again fetches this file afresh. ` +
        `If it happens again, the mirror at ${client.hubUrl} serves different bytes than it lists: check taskling.hubUrl.`,
      kept,
    );
  }
  return { path: entry.path, size: exp.size, sha256: actual256, ...(actualOid ? { gitOid: actualOid } : {}), lfs: exp.lfs };
}

/** True when the record lists this tree entry with the same size/hash and the file is on disk. */
function alreadyHave(dir: string, record: DownloadRecord | undefined, e: HubTreeEntry): DownloadedFile | undefined {
  const f = record?.files.find((x) => x.path === e.path);
  if (!f) return undefined;
  const exp = expectedOf(e);
  if (f.size !== exp.size || (exp.sha256 && f.sha256 !== exp.sha256) || (exp.gitOid && f.gitOid && f.gitOid !== exp.gitOid)) return undefined;
  try {
    return statSync(join(dir, e.path)).size === f.size ? f : undefined;
  } catch {
    return undefined;
  }
}

function wrapAbort<T>(signal: AbortSignal | undefined, p: Promise<T>, what: string): Promise<T> {
  return p.catch((e) => {
    if (signal?.aborted || isAbortError(e)) throw new CancelledError(`Download cancelled while ${what}; nothing was downloaded yet.`);
    throw e;
  });
}

/**
 * Downloads `variant` of `repo` at `revision` into `<destRoot>/<owner>__<name>/<sha>/`, resuming
 * any partial data of an earlier attempt, and returns the checked folder.
 *
 * @throws TasklingError `GATED_REPO`, `OFFLINE`, `HASH_MISMATCH` (partial kept), `CANCELLED`
 *   (partial kept), `DOWNLOAD_FAILED` (HTTP errors, repo/revision/file not found, retries used up),
 *   or readModelFolder's codes when the downloaded folder is not a usable model.
 */
export async function downloadModel(opts: DownloadOptions): Promise<DownloadResult> {
  const { repo, variant, destRoot, signal } = opts;
  checkRepoId(repo);
  const requested = opts.revision || 'main';
  const client = new HubClient({ hubUrl: opts.hubUrl, token: opts.token, fetch: opts.fetch });
  if (signal?.aborted) throw new CancelledError('Download cancelled before it started.');

  const sha = await wrapAbort(signal, client.resolveRevision(repo, requested, signal), 'resolving the revision');
  const finalDir = modelDirFor(destRoot, repo, sha);
  const record = readDownloadRecord(finalDir);
  const tree = await wrapAbort(signal, client.listFiles(repo, sha, signal), 'listing the files');
  const entries = selectFiles(tree, opts.files ?? defaultVariantFiles(variant), variant, repo, sha, client.hubUrl);

  const present = new Map<string, DownloadedFile>();
  for (const e of entries) { const f = alreadyHave(finalDir, record, e); if (f) present.set(e.path, f); }
  const todo = entries.filter((e) => !present.has(e.path));

  if (todo.length === 0 && record) {
    if (!record.variants.includes(variant)) {
      readModelFolder(finalDir, variant);
      await writeJsonAtomic(join(finalDir, RECORD_FILE), { ...record, variants: [...record.variants, variant] });
    }
    readModelFolder(finalDir, variant);
    return { dir: finalDir, revision: sha, requestedRevision: requested, files: entries.map((e) => present.get(e.path)!), reused: true };
  }

  const partialDir = partialDirFor(destRoot, repo, sha);
  await mkdir(partialDir, { recursive: true });
  const totalBytes = entries.reduce((s, e) => s + expectedOf(e).size, 0);
  const meter = new ProgressMeter(totalBytes, opts.progressIntervalMs ?? 200, opts.onProgress);
  for (const f of present.values()) meter.add(f.size, false);

  const done = new Map<string, DownloadedFile>(present);
  for (const entry of todo) {
    const f = await downloadFile({
      entry, partialDir, client, repo, sha, meter, signal,
      maxRetries: opts.maxRetries ?? 5,
      retryDelayMs: opts.retryDelayMs ?? 1000,
    });
    done.set(entry.path, f);
  }
  if (signal?.aborted) throw new CancelledError(`Download cancelled; the data is kept in ${partialDir} and downloading again resumes from there.`);

  // Every file is verified: give them their real names, check the folder, then move it into place.
  for (const entry of todo) {
    await rename(join(partialDir, `${entry.path}.part`), join(partialDir, entry.path));
    await rm(join(partialDir, `${entry.path}.part.json`), { force: true });
  }
  const files = entries.map((e) => done.get(e.path)!);
  const allFiles = new Map<string, DownloadedFile>((record?.files ?? []).map((f) => [f.path, f]));
  for (const f of files) allFiles.set(f.path, f);
  const newRecord: DownloadRecord = {
    format: 1,
    repo,
    hubUrl: client.hubUrl,
    revision: requested,
    sha,
    variants: [...new Set([...(record?.variants ?? []), variant])],
    files: [...allFiles.values()].sort((a, b) => a.path.localeCompare(b.path)),
    finishedAt: new Date().toISOString(),
  };

  if (!existsSync(finalDir)) {
    readModelFolder(partialDir, variant);
    await writeJsonAtomic(join(partialDir, RECORD_FILE), newRecord);
    await mkdir(dirname(finalDir), { recursive: true });
    await rename(partialDir, finalDir);
  } else {
    // Another variant of the same commit is already there: add the new files, record last.
    for (const entry of todo) {
      const target = join(finalDir, entry.path);
      await mkdir(dirname(target), { recursive: true });
      await rename(join(partialDir, entry.path), target);
    }
    readModelFolder(finalDir, variant);
    await writeJsonAtomic(join(finalDir, RECORD_FILE), newRecord);
    await rm(partialDir, { recursive: true, force: true });
  }
  readModelFolder(finalDir, variant);
  return { dir: finalDir, revision: sha, requestedRevision: requested, files, reused: false };
}

/**
 * Complete downloads under `destRoot` (folders with a record whose files are all present with the
 * recorded sizes), newest first. Partial downloads are not listed.
 */
export function findDownloadedModels(destRoot: string): DownloadedModel[] {
  const out: DownloadedModel[] = [];
  if (!existsSync(destRoot)) return out;
  for (const repoDir of readdirSync(destRoot, { withFileTypes: true })) {
    if (!repoDir.isDirectory() || repoDir.name === PARTIAL_DIR || !repoDir.name.includes('__')) continue;
    for (const shaDir of readdirSync(join(destRoot, repoDir.name), { withFileTypes: true })) {
      if (!shaDir.isDirectory()) continue;
      const dir = join(destRoot, repoDir.name, shaDir.name);
      const r = readDownloadRecord(dir);
      if (!r || r.sha !== shaDir.name) continue;
      const complete = r.files.every((f) => {
        try { return safeRelPath(f.path) && statSync(join(dir, f.path)).size === f.size; } catch { return false; }
      });
      if (!complete) continue;
      out.push({ dir, repo: r.repo, revision: r.revision, sha: r.sha, hubUrl: r.hubUrl, variants: r.variants, finishedAt: r.finishedAt, files: r.files });
    }
  }
  return out.sort((a, b) => b.finishedAt.localeCompare(a.finishedAt));
}

/** Bytes kept for a partial download of repo@sha (0 when none); for "resume N MB" in the UI. */
export async function partialBytes(destRoot: string, repo: string, sha: string): Promise<number> {
  const dir = partialDirFor(destRoot, repo, sha);
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.part')) total += (await stat(p)).size;
    }
  };
  if (existsSync(dir)) await walk(dir);
  return total;
}
