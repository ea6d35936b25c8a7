/**
 * Model store: download from a hub-like HTTP server on 127.0.0.1 that serves the tiny test model
 * with the hub's URLs and headers (revision API, paginated tree listing, resolve with a redirect
 * for LFS files, Range / If-Range), plus failure modes: a dropped connection, corrupt bytes, a
 * gated repo, no server, and cancellation.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { downloadModel, findDownloadedModels, readDownloadRecord, partialDirFor, type DownloadProgress } from '../../src/core/store/download';
import { loadCatalog, getCatalogModel, catalogVariantFiles, defaultVariantFiles } from '../../src/core/store/catalog';
import { HubClient, nextLink } from '../../src/core/store/hubClient';
import { readModelFolder } from '../../src/core/model/modelFolder';
import { TasklingError } from '../../src/core/errors';
import { TINY_MODEL } from './testPaths';

const REPO = 'onnx-community/gemma-3-270m-it-ONNX';
const SHA = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const PAGE = 3; // tree entries per page: the listing spans several pages
const SERVED = ['config.json', 'generation_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model_q4.onnx', 'onnx/model_q4.onnx_data'];
const isLfs = (p: string): boolean => p.startsWith('onnx/') || p === 'tokenizer.json';

interface HubFile { path: string; data: Buffer; sha256: string; gitOid: string; lfs: boolean }

/** What the server saw and how it misbehaves; reset before each test. */
interface State {
  gated: boolean;
  dropOnce?: { path: string; afterBytes: number };
  corrupt?: string;
  bytesServed: Map<string, number>;
  rangeStarts: Map<string, number[]>;
  treeRequests: number;
  ifRange: string[];
}

let server: Server;
let base: string;
const files = new Map<string, HubFile>();
const state: State = { gated: false, bytesServed: new Map(), rangeStarts: new Map(), treeRequests: 0, ifRange: [] };

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(s), ...headers });
  res.end(s);
}

function treeEntries(): unknown[] {
  const out: unknown[] = [{ type: 'directory', path: 'onnx', size: 0, oid: '0'.repeat(40) }];
  for (const f of files.values()) {
    out.push({
      type: 'file', path: f.path, size: f.data.length, oid: f.gitOid,
      ...(f.lfs ? { lfs: { oid: f.sha256, size: f.data.length, pointerSize: 134 } } : {}),
    });
  }
  return out;
}

/** Serves bytes of a file with Range / If-Range support and the configured failure modes. */
function serveBytes(req: IncomingMessage, res: ServerResponse, f: HubFile, etag: string, extra: Record<string, string>): void {
  let data = f.data;
  if (state.corrupt === f.path) {
    data = Buffer.from(data);
    data[Math.floor(data.length / 2)] ^= 0xff;
  }
  let start = 0;
  let status = 200;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'];
  if (typeof ifRange === 'string') state.ifRange.push(ifRange);
  if (range && (ifRange === undefined || ifRange === `"${etag}"`)) {
    start = Number(range[1]);
    if (start >= data.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${data.length}` });
      res.end();
      return;
    }
    status = 206;
  }
  const starts = state.rangeStarts.get(f.path) ?? [];
  starts.push(start);
  state.rangeStarts.set(f.path, starts);
  const headers: Record<string, string> = {
    ...extra,
    ETag: `"${etag}"`,
    'Accept-Ranges': 'bytes',
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(data.length - start),
    ...(status === 206 ? { 'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
  };
  res.writeHead(status, headers);
  if (req.method === 'HEAD') { res.end(); return; }
  const count = (n: number): void => { state.bytesServed.set(f.path, (state.bytesServed.get(f.path) ?? 0) + n); };
  if (state.dropOnce?.path === f.path && state.dropOnce.afterBytes > start) {
    const end = state.dropOnce.afterBytes;
    state.dropOnce = undefined;
    count(end - start);
    res.write(data.subarray(start, end), () => res.socket?.destroy());
    return;
  }
  count(data.length - start);
  res.end(data.subarray(start));
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', base);
  const path = decodeURIComponent(url.pathname);
  const repoPrefix = [`/api/models/${REPO}/`, `/${REPO}/resolve/`];
  if (state.gated && repoPrefix.some((p) => path.startsWith(p))) {
    sendJson(res, 401, { error: 'Access to model is restricted.' }, { 'X-Error-Code': 'GatedRepo', 'X-Error-Message': 'Access to model is restricted and you are not in the authorized list.' });
    return;
  }
  let m: RegExpExecArray | null;
  if ((m = new RegExp(`^/api/models/${REPO}/revision/(.+)$`).exec(path))) {
    if (m[1] === 'main' || m[1] === SHA) return sendJson(res, 200, { id: REPO, sha: SHA });
    return sendJson(res, 404, { error: 'Invalid rev id' }, { 'X-Error-Code': 'RevisionNotFound' });
  }
  if ((m = new RegExp(`^/api/models/${REPO}/tree/(.+)$`).exec(path))) {
    state.treeRequests++;
    if (m[1] !== SHA && m[1] !== 'main') return sendJson(res, 404, { error: 'Invalid rev id' }, { 'X-Error-Code': 'RevisionNotFound' });
    const all = treeEntries();
    const cursor = Number(url.searchParams.get('cursor') ?? 0);
    const headers: Record<string, string> = {};
    if (cursor + PAGE < all.length) {
      headers.Link = `<${base}/api/models/${REPO}/tree/${m[1]}?recursive=true&cursor=${cursor + PAGE}>; rel="next"`;
    }
    return sendJson(res, 200, all.slice(cursor, cursor + PAGE), headers);
  }
  if ((m = new RegExp(`^/${REPO}/resolve/([^/]+)/(.+)$`).exec(path))) {
    const f = files.get(m[2]);
    if (m[1] !== SHA && m[1] !== 'main') return sendJson(res, 404, { error: 'Invalid rev id' }, { 'X-Error-Code': 'RevisionNotFound' });
    if (!f) return sendJson(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': SHA });
    if (f.lfs) {
      // Like the hub: LFS files redirect to a CDN; the hub headers ride on the redirect.
      res.writeHead(302, {
        Location: `${base}/cdn/${f.sha256}?path=${encodeURIComponent(f.path)}`,
        'X-Repo-Commit': SHA, 'X-Linked-Etag': `"${f.sha256}"`, 'X-Linked-Size': String(f.data.length), ETag: `"${f.sha256}"`,
      });
      res.end();
      return;
    }
    return serveBytes(req, res, f, f.gitOid, { 'X-Repo-Commit': SHA });
  }
  if ((m = /^\/cdn\/([0-9a-f]{64})$/.exec(path))) {
    const f = files.get(url.searchParams.get('path') ?? '');
    if (!f || f.sha256 !== m[1]) return sendJson(res, 404, { error: 'not found' });
    return serveBytes(req, res, f, f.sha256, {});
  }
  sendJson(res, 404, { error: 'not found' });
}

before(async () => {
  for (const p of SERVED) {
    const data = readFileSync(join(TINY_MODEL, p));
    const gitOid = createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
    files.set(p, { path: p, data, sha256: createHash('sha256').update(data).digest('hex'), gitOid, lfs: isLfs(p) });
  }
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  state.gated = false;
  state.dropOnce = undefined;
  state.corrupt = undefined;
  state.bytesServed.clear();
  state.rangeStarts.clear();
  state.treeRequests = 0;
  state.ifRange = [];
});

const scratch = (): string => mkdtempSync(join(tmpdir(), 'taskling-store-'));
const totalSize = (): number => [...files.values()].reduce((s, f) => s + f.data.length, 0);

async function expectCode(p: Promise<unknown>, code: string): Promise<TasklingError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TasklingError, `expected TasklingError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

test('the catalog lists gemma-3-270m-it with q4 as the default variant', () => {
  const m = getCatalogModel('gemma-3-270m-it', loadCatalog());
  assert.equal(m.repo, REPO);
  assert.equal(m.revision, 'main');
  assert.equal(m.defaultVariant, 'q4');
  assert.deepEqual(Object.keys(m.variants).sort(), ['fp16', 'fp32', 'q4', 'q4f16']);
  const q4 = catalogVariantFiles(m, 'q4').map((f) => f.path);
  assert.ok(q4.includes('onnx/model_q4.onnx') && q4.includes('onnx/model_q4.onnx_data') && q4.includes('tokenizer.json'));
  assert.deepEqual(q4.sort(), defaultVariantFiles('q4').map((f) => f.path).sort());
  assert.throws(() => catalogVariantFiles(m, 'int8'), /no variant "int8"/);
});

test('hub client: revision -> sha, paginated tree listing, HEAD headers', async () => {
  const c = new HubClient({ hubUrl: base + '/' });
  assert.equal(await c.resolveRevision(REPO, 'main'), SHA);
  const tree = await c.listFiles(REPO, SHA);
  assert.equal(tree.filter((e) => e.type === 'file').length, SERVED.length);
  assert.ok(state.treeRequests >= 3, `tree pages fetched: ${state.treeRequests}`);
  const h = await c.headFile(REPO, SHA, 'onnx/model_q4.onnx_data');
  assert.equal(h.status, 302);
  assert.equal(h.commit, SHA);
  assert.equal(h.etag, files.get('onnx/model_q4.onnx_data')!.sha256);
  assert.equal(h.size, files.get('onnx/model_q4.onnx_data')!.data.length);
  assert.equal(nextLink('</api/x?cursor=2>; rel="next", </api/x?cursor=0>; rel="first"', 'http://h/api/x'), 'http://h/api/x?cursor=2');
  const e = await expectCode(c.resolveRevision(REPO, 'nope'), 'DOWNLOAD_FAILED');
  assert.match(e.message, /revision does not exist/);
});

test('downloads a variant: progress, verified files, atomic folder, record with the resolved sha', async () => {
  const dest = scratch();
  const events: DownloadProgress[] = [];
  const model = getCatalogModel('gemma-3-270m-it');
  const r = await downloadModel({
    hubUrl: base, repo: REPO, variant: 'q4', destRoot: dest,
    files: catalogVariantFiles(model, 'q4'), onProgress: (p) => events.push(p), progressIntervalMs: 0,
  });
  assert.equal(r.revision, SHA);
  assert.equal(r.dir, join(dest, 'onnx-community__gemma-3-270m-it-ONNX', SHA));
  assert.equal(r.reused, false);
  assert.ok(state.treeRequests >= 3, 'the listing was followed over its Link pages');
  const folder = readModelFolder(r.dir, 'q4');
  assert.equal(folder.dir, r.dir);
  for (const f of files.values()) {
    assert.ok(readFileSync(join(r.dir, f.path)).equals(f.data), `${f.path} content`);
  }
  const rec = readDownloadRecord(r.dir)!;
  assert.equal(rec.sha, SHA);
  assert.equal(rec.revision, 'main');
  assert.equal(rec.repo, REPO);
  assert.deepEqual(rec.variants, ['q4']);
  assert.ok(!Number.isNaN(Date.parse(rec.finishedAt)));
  for (const f of rec.files) {
    const src = files.get(f.path)!;
    assert.equal(f.size, src.data.length);
    assert.equal(f.sha256, src.sha256);
    assert.equal(f.lfs, src.lfs);
    if (!src.lfs) assert.equal(f.gitOid, src.gitOid);
  }
  // Progress: monotonic, ends at the total, reports a speed.
  assert.ok(events.length > 5);
  for (let i = 1; i < events.length; i++) assert.ok(events[i].bytes >= events[i - 1].bytes);
  const last = events[events.length - 1];
  assert.equal(last.bytes, totalSize());
  assert.equal(last.totalBytes, totalSize());
  assert.ok(events.some((e) => e.bytesPerSecond > 0));
  assert.ok(events.some((e) => e.file === 'onnx/model_q4.onnx_data' && e.fileBytes === e.fileTotal));
  // Nothing partial remains; the download is listed.
  assert.deepEqual(readdirSync(join(dest, '.partial')), []);
  const found = findDownloadedModels(dest);
  assert.equal(found.length, 1);
  assert.equal(found[0].sha, SHA);
  assert.deepEqual(found[0].variants, ['q4']);
  // A second call finds everything in place and fetches no file bytes.
  state.bytesServed.clear();
  const again = await downloadModel({ hubUrl: base, repo: REPO, variant: 'q4', destRoot: dest });
  assert.equal(again.reused, true);
  assert.equal(again.dir, r.dir);
  assert.equal(state.bytesServed.size, 0);
  rmSync(dest, { recursive: true, force: true });
});

test('a dropped connection mid-file resumes from the partial bytes, not from zero', async () => {
  const dest = scratch();
  const path = 'onnx/model_q4.onnx_data';
  const size = files.get(path)!.data.length;
  const afterBytes = 7 * 1024 * 1024 + 123;
  state.dropOnce = { path, afterBytes };
  const r = await downloadModel({ hubUrl: base, repo: REPO, variant: 'q4', destRoot: dest, retryDelayMs: 10 });
  readModelFolder(r.dir, 'q4');
  const starts = state.rangeStarts.get(path)!;
  assert.equal(starts.length, 2, `requests for ${path}: ${starts}`);
  assert.equal(starts[0], 0);
  assert.ok(starts[1] > 0 && starts[1] <= afterBytes, `resumed at ${starts[1]}`);
  assert.equal(state.bytesServed.get(path), afterBytes + (size - starts[1]));
  assert.ok(state.bytesServed.get(path)! < size + afterBytes + 1);
  assert.ok(state.ifRange.includes(`"${files.get(path)!.sha256}"`), 'the resume sent If-Range with the ETag');
  assert.ok(readFileSync(join(r.dir, path)).equals(files.get(path)!.data));
  rmSync(dest, { recursive: true, force: true });
});

test('a part file left by a crash is hashed and resumed with a Range request', async () => {
  const dest = scratch();
  const path = 'tokenizer.json';
  const data = files.get(path)!.data;
  const partDir = partialDirFor(dest, REPO, SHA);
  mkdirSync(partDir, { recursive: true });
  const have = 10_000_000;
  writeFileSync(join(partDir, `${path}.part`), data.subarray(0, have));
  const r = await downloadModel({ hubUrl: base, repo: REPO, variant: 'q4', destRoot: dest });
  assert.deepEqual(state.rangeStarts.get(path), [have]);
  assert.equal(state.bytesServed.get(path), data.length - have);
  assert.ok(readFileSync(join(r.dir, path)).equals(data));
  rmSync(dest, { recursive: true, force: true });
});

test('corrupt bytes: HASH_MISMATCH names the file and both hashes, keeps the data; a retry succeeds', async () => {
  const dest = scratch();
  const path = 'onnx/model_q4.onnx_data';
  state.corrupt = path;
  const e = await expectCode(downloadModel({ hubUrl: base, repo: REPO, variant: 'q4', destRoot: dest }), 'HASH_MISMATCH');
  const expected = files.get(path)!.sha256;
  assert.match(e.message, /onnx\/model_q4\.onnx_data/);
  assert.ok(e.message.includes(`expected ${expected}`), e.message);
  assert.match(e.message, /got [0-9a-f]{64}/);
  assert.match(e.message, /kept/);
  assert.ok(e.file && existsSync(e.file), `kept data at ${e.file}`);
  assert.equal(statSync(e.file!).size, files.get(path)!.data.length);
  assert.equal(existsSync(join(dest, 'onnx-community__gemma-3-270m-it-ONNX')), false, 'no final folder');
  // Retry after the mirror is fixed: verified files are not fetched again.
  state.corrupt = undefined;
  state.bytesServed.clear();
  const r = await downloadModel({ hubUrl: base, repo: REPO, variant: 'q4', destRoot: dest });
  assert.equal(state.bytesServed.get('tokenizer.json') ?? 0, 0, 'tokenizer.json was kept from the first attempt');
  assert.equal(state.bytesServed.get(path), files.get(path)!.data.length);
  readModelFolder(r.dir, 'q4');
  rmSync(dest, { recursive: true, force: true });
});

test('a corrupt small (non-LFS) file fails its git blob id check', async () => {
  const dest = scratch();
  state.corrupt = 'tokenizer_config.json';
  const e = await expectCode(downloadModel({ hubUrl: base, repo: REPO, variant: 'q4', destRoot: dest }), 'HASH_MISMATCH');
  assert.match(e.message, /tokenizer_config\.json does not match the hub's git blob id: expected [0-9a-f]{40}, got [0-9a-f]{40}/);
  rmSync(dest, { recursive: true, force: true });
});

test('gated repo: GATED_REPO says to accept the licence and set a token, or choose a folder', async () => {
  state.gated = true;
  const e = await expectCode(downloadModel({ hubUrl: base, repo: REPO, variant: 'q4', destRoot: scratch() }), 'GATED_REPO');
  assert.match(e.message, /gated/);
  assert.match(e.message, /accept the licence/);
  assert.match(e.message, /token/);
  assert.match(e.message, /local folder/);
});

test('no server: OFFLINE says to choose a folder or set taskling.hubUrl to a mirror', async () => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  const e = await expectCode(downloadModel({ hubUrl: `http://127.0.0.1:${port}`, repo: REPO, variant: 'q4', destRoot: scratch() }), 'OFFLINE');
  assert.match(e.message, /No network/);
  assert.match(e.message, /ECONNREFUSED/);
  assert.match(e.message, /[Cc]hoose a folder/);
  assert.match(e.message, /taskling\.hubUrl/);
});

test('cancel mid-file keeps the partial data; the next download resumes and completes', async () => {
  const dest = scratch();
  const path = 'onnx/model_q4.onnx_data';
  const size = files.get(path)!.data.length;
  const ac = new AbortController();
  const e = await expectCode(
    downloadModel({
      hubUrl: base, repo: REPO, variant: 'q4', destRoot: dest, signal: ac.signal, progressIntervalMs: 0,
      onProgress: (p) => { if (p.file === path && p.fileBytes > 5_000_000) ac.abort(); },
    }),
    'CANCELLED',
  );
  assert.match(e.message, /kept/);
  assert.match(e.message, /resumes/);
  const part = join(partialDirFor(dest, REPO, SHA), `${path}.part`);
  const kept = statSync(part).size;
  assert.ok(kept > 5_000_000 && kept < size, `kept ${kept}`);
  state.bytesServed.clear();
  state.rangeStarts.clear();
  const r = await downloadModel({ hubUrl: base, repo: REPO, variant: 'q4', destRoot: dest });
  assert.deepEqual(state.rangeStarts.get(path), [kept]);
  assert.equal(state.bytesServed.get(path), size - kept);
  assert.equal(state.bytesServed.get('tokenizer.json') ?? 0, 0);
  readModelFolder(r.dir, 'q4');
  assert.equal(readDownloadRecord(r.dir)!.sha, SHA);
  assert.ok(readFileSync(join(r.dir, path)).equals(files.get(path)!.data));
  rmSync(dest, { recursive: true, force: true });
});
