/**
 * A fake OpenAI-compatible server (node:http on 127.0.0.1, a free port) for the endpoint tests:
 * `GET /v1/models` lists "fake-model"; `/v1/chat/completions` answers structured requests from
 * the text (extract: "First Last" names as person entities; toJson: `{"echo": text}`) and
 * classify choices with deterministic top_logprobs; `/v1/completions` echoes prompt token ids with
 * deterministic log-probabilities. Faults per request (429, 500, truncated / malformed bodies,
 * resets, missing choices, slow answers, 400) come from `fault(n, path, body)`.
 * Used by test/unit/endpoint.test.ts and the code-server suite (test/integration/suite/endpoint.test.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { INPUT_HEADER } from '../src/core/adapters/prompt';

export type Fault = { kind: '429' | '500' | 'truncated' | 'malformed' | 'reset' | 'no-choices' } | { kind: 'slow'; ms: number } | { kind: '400'; message: string };
export interface Answer { status?: number; json?: unknown }
export interface FakeOptions {
  /** Fault for the n-th request (1-based, counting every request the server saw). */
  fault?: (n: number, path: string, body: Record<string, unknown>) => Fault | undefined;
  /** Overrides the default fake model for some requests. */
  answer?: (path: string, body: Record<string, unknown>) => Answer | undefined;
  /** Delay before every answer, ms. */
  delayMs?: number;
}
export interface Fake {
  url: string;
  port: number;
  /** Every request: path and raw body text. */
  requests: { path: string; raw: string }[];
  close(): Promise<void>;
}

/** Deterministic fake log-probability of token `id` at position `pos`. */
export const fakeLp = (id: number, pos: number) => -(((id * 7919 + pos * 31) % 23) / 10) - 0.05;
/** The user text of a chat request: the last user message after `Text:\n` (and before a multi-label question). */
export function userText(body: Record<string, unknown>): string {
  const msgs = body.messages as { role: string; content: string }[];
  const c = msgs[msgs.length - 1].content;
  const t = c.slice(c.lastIndexOf(INPUT_HEADER) + INPUT_HEADER.length);
  const q = t.indexOf('\n\nDoes the text above belong');
  return q >= 0 ? t.slice(0, q) : t;
}
export const hash = (s: string) => [...s].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7);
/** Top alternatives the fake gives at the label position: each label with logprob -(1 + rank/2), plus junk. */
export function fakeChoice(options: string[], text: string) {
  const k = hash(text) % options.length;
  const order = [options[k], ...options.filter((_, i) => i !== k)];
  const top = [...order.map((o, r) => ({ token: o, logprob: -0.3 - r * 0.7 })), { token: ' ', logprob: -2.5 }, { token: 'zzz', logprob: -3 }];
  return { chosen: options[k], top };
}

export function defaultAnswer(path: string, body: Record<string, unknown>): Answer {
  if (path === '/v1/models') return { json: { object: 'list', data: [{ id: 'fake-model', object: 'model' }] } };
  if (path === '/v1/completions') {
    const p = body.prompt as number[];
    const lps = [null, ...p.slice(1).map((id, i) => fakeLp(id, i + 1)), -0.01];
    return { json: { choices: [{ text: 'x', index: 0, finish_reason: 'length', logprobs: { tokens: [...p.map(String), 'x'], token_logprobs: lps, top_logprobs: null, text_offset: [] } }], usage: { prompt_tokens: p.length, completion_tokens: 1 } } };
  }
  const rf = body.response_format as { json_schema?: { schema?: Record<string, unknown> } } | undefined;
  const schema = rf?.json_schema?.schema ?? {};
  const text = userText(body);
  let content: string;
  let logprobs: unknown;
  if (body.logprobs === true) {
    // A classify choice: the labels from the prompt's "- name: description" lines, or yes/no.
    const msgs = body.messages as { content: string }[];
    const options = msgs.at(-1)!.content.endsWith('Answer yes or no.') ? ['yes', 'no'] : [...msgs[0].content.matchAll(/^- ([^:\n]+):/gm)].map((m) => m[1]);
    const c = fakeChoice(options, text);
    content = c.chosen;
    logprobs = { content: [{ token: c.chosen, logprob: c.top[0].logprob, top_logprobs: c.top }] };
  } else if ((schema.properties as Record<string, unknown> | undefined)?.entities) {
    const names = text.match(/\b[A-Z][a-z]+ [A-Z][a-z]+\b/g) ?? [];
    const entities = names.map((n) => ({ type: 'person', text: n }));
    if (text.includes('ghost')) entities.push({ type: 'person', text: 'Casper Nobody' });
    content = JSON.stringify({ entities });
  } else content = JSON.stringify({ echo: text });
  return { json: { choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content }, ...(logprobs ? { logprobs } : {}) }], usage: { prompt_tokens: 100, completion_tokens: 5 } } };
}

export async function startFake(o: FakeOptions = {}, port = 0): Promise<Fake> {
  const requests: Fake['requests'] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { raw += c; });
    req.on('end', () => {
      const path = req.url ?? '';
      requests.push({ path, raw });
      const body = raw ? JSON.parse(raw) as Record<string, unknown> : {};
      const fault = o.fault?.(requests.length, path, body);
      const send = () => {
        if (fault?.kind === 'reset') { req.socket.destroy(); return; }
        if (fault?.kind === '429') { res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/json' }).end('{"error":{"message":"too many requests"}}'); return; }
        if (fault?.kind === '500') { res.writeHead(500).end('internal error'); return; }
        if (fault?.kind === '400') { res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: fault.message, type: 'invalid_request_error' } })); return; }
        if (fault?.kind === 'malformed') { res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices": [{"message": '); return; }
        if (fault?.kind === 'no-choices') { res.writeHead(200, { 'content-type': 'application/json' }).end('{"object": "chat.completion"}'); return; }
        const a = o.answer?.(path, body) ?? defaultAnswer(path, body);
        const text = JSON.stringify(a.json);
        if (fault?.kind === 'truncated') {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
          res.write(text.slice(0, Math.floor(text.length / 2)));
          setTimeout(() => req.socket.destroy(), 5);
          return;
        }
        res.writeHead(a.status ?? 200, { 'content-type': 'application/json' }).end(text);
      };
      const delay = (fault?.kind === 'slow' ? fault.ms : 0) + (o.delayMs ?? 0);
      if (delay) setTimeout(send, delay); else send();
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const p = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${p}/v1`, port: p, requests,
    close: () => new Promise<void>((r) => { server.close(() => r()); for (const s of sockets) s.destroy(); }),
  };
}
