/**
 * llama.cpp's OpenAI-compatible server (llama-cpp-python's `llama_cpp.server`, installed by
 * `node tools/llamaServer.mjs` into .cache/llama-server/venv) on the real GGUF, on 127.0.0.1, for
 * the real-server endpoint test and the throughput figures of docs/endpoint.md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

const REPO_ROOT = join(__dirname, '..', '..');
export const REAL_GGUF = join(REPO_ROOT, 'models', 'real', 'gguf', 'gemma-3-270m-q4_k_m.gguf');

/** The venv's python when llama-cpp-python[server] is installed there, else undefined. */
export function llamaServerPython(): string | undefined {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'tools', 'llamaServer.mjs'), '--print-python'], { encoding: 'utf8' });
  const py = r.stdout.trim();
  return r.status === 0 && py && existsSync(py) ? py : undefined;
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => resolve(port)); });
  });
}

export interface LlamaServer {
  /** Base URL, `http://127.0.0.1:PORT/v1`. */
  url: string;
  port: number;
  proc: ChildProcess;
  /** The server's stderr/stdout so far (last 20,000 characters). */
  output(): string;
  /** SIGKILL, resolved once the process has exited. */
  kill(): Promise<void>;
}

/**
 * Starts the server on `port` (a free one when 0) with the model's context and logprobs on
 * (`--logits_all true`: llama-cpp-python returns logprobs only then), and resolves once
 * `GET /v1/models` answers.
 * @throws Error naming the exit code and the server's last output when it exits or does not answer within `timeoutMs`.
 */
export async function startLlamaServer(python: string, o: { port?: number; timeoutMs?: number; threads?: number } = {}): Promise<LlamaServer> {
  const port = o.port || await freePort();
  const args = ['-m', 'llama_cpp.server', '--model', REAL_GGUF, '--host', '127.0.0.1', '--port', String(port),
    '--n_ctx', '2048', '--logits_all', 'true', '--n_threads', String(o.threads ?? 2), '--n_batch', '512'];
  const proc = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  let out = '';
  const keep = (c: Buffer) => { out = (out + c.toString('utf8')).slice(-20_000); };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const server: LlamaServer = {
    url: `http://127.0.0.1:${port}/v1`, port, proc, output: () => out,
    kill: async () => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); await exited; },
  };
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`llama_cpp.server exited (${proc.exitCode ?? proc.signalCode}) before answering:\n${out.slice(-3000)}`);
    try {
      const res = await fetch(`${server.url}/models`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return server;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  await server.kill();
  throw new Error(`llama_cpp.server did not answer GET /v1/models within ${o.timeoutMs ?? 120_000} ms:\n${out.slice(-3000)}`);
}
