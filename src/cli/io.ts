/**
 * The CLI's process boundary: what it writes to stdout (results only, and a reader that closes
 * the pipe ends the run quietly), how it ends when its parent goes away or it is sent SIGTERM,
 * and how input bytes become text (strict UTF-8, no binary, per line for JSONL).
 */
import { readFileSync } from 'node:fs';

/** Exit code when the reader of stdout closed it (128 + SIGPIPE, as `yes | head -1` gives). */
export const EXIT_PIPE = 141;
/** Exit code when the parent process went away (128 + SIGHUP). */
export const EXIT_PARENT_GONE = 129;
/** Exit code after SIGTERM (128 + 15). */
export const EXIT_TERMINATED = 143;

/** Why the CLI must stop, set once; `signal` aborts the run in progress. */
export interface Lifetime {
  signal: AbortSignal;
  /** The exit code for the reason, or undefined while none. */
  exitCode(): number | undefined;
}

const controller = new AbortController();
let reason: number | undefined;
let installed = false;

function stop(code: number): void {
  if (reason !== undefined) return;
  reason = code;
  controller.abort();
}

/** The CLI's lifetime: aborted when stdout's reader is gone, the parent died, or SIGTERM arrived. */
export const lifetime: Lifetime = { signal: controller.signal, exitCode: () => reason };

/**
 * Installs, once per process:
 * - an `error` listener on stdout: `EPIPE` (the reader closed the pipe) stops the run (exit
 *   {@link EXIT_PIPE}), and no further output is attempted; stderr errors are ignored;
 * - SIGTERM: stops the run after the current step ({@link EXIT_TERMINATED});
 * - a check every `pollMs` that the parent process is still the one that started us (on Linux and
 *   macOS an orphan is re-parented, so `process.ppid` changes when `npx` or a shell is killed,
 *   even with SIGKILL): stops the run ({@link EXIT_PARENT_GONE}).
 * A stop lets the model finish its current forward pass and release (never a process abort);
 * when the process is still alive `hardExitMs` after a stop (e.g. inside a model load that
 * cannot be cancelled), it exits.
 */
export function installProcessGuards(pollMs = 500, hardExitMs = 15_000): void {
  if (installed) return;
  installed = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    stop(EXIT_PIPE);
    if (e.code !== 'EPIPE') process.stderr.write(`taskling: cannot write to standard output: ${e.message}\n`);
  });
  process.stderr.on('error', () => undefined);
  process.once('SIGTERM', () => stop(EXIT_TERMINATED));
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      stop(EXIT_PARENT_GONE);
    }
  }, pollMs);
  timer.unref();
  controller.signal.addEventListener('abort', () => {
    setTimeout(() => process.exit(reason), hardExitMs).unref();
  }, { once: true });
}

/** Writes `text` to stdout unless its reader is gone. */
export function writeOut(text: string): void {
  if (reason === EXIT_PIPE || process.stdout.destroyed) return;
  process.stdout.write(text);
}

/**
 * `text` looks like binary data rather than text: it holds a NUL or other C0 control characters
 * (besides tab, newline, carriage return, form feed, escape) in more than 1 of 64 characters of
 * its first 64 KiB, or any NUL at all.
 */
export function looksBinary(text: string): boolean {
  if (text.includes('\u0000')) return true;
  const head = text.slice(0, 65536);
  let controls = 0;
  for (let i = 0; i < head.length; i++) {
    const c = head.charCodeAt(i);
    if (c < 32 && c !== 9 && c !== 10 && c !== 13 && c !== 12 && c !== 27) controls++;
  }
  return controls * 64 > head.length;
}

/** Strict UTF-8 decoding (a leading BOM dropped); undefined when `bytes` are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** Text of one input, or why it is not text: `name` is the file or "standard input". */
export function decodeInput(bytes: Uint8Array, name: string): { text: string } | { error: string } {
  const text = decodeUtf8(bytes);
  if (text === undefined) return { error: `${name} is not UTF-8 text (binary file?)` };
  if (looksBinary(text)) return { error: `${name} holds binary data (NUL or control bytes), not text` };
  return { text };
}

/** Reads the input file (or stdin for `-`/undefined) as bytes; prints and returns undefined on failure. */
export async function readInputBytes(path: string | undefined): Promise<{ bytes: Uint8Array; name: string } | undefined> {
  if (!path || path === '-') {
    if (process.stdin.isTTY) console.error('taskling: reading the input from standard input (end with Ctrl-D; or give --input FILE or the text)');
    const chunks: Buffer[] = [];
    const onStop = () => process.stdin.destroy(); // ends the loop below
    lifetime.signal.addEventListener('abort', onStop, { once: true });
    try {
      for await (const c of process.stdin) chunks.push(c as Buffer);
    } catch {
      // destroyed by a stop: handled below
    } finally {
      lifetime.signal.removeEventListener('abort', onStop);
    }
    if (lifetime.signal.aborted) return undefined;
    return { bytes: Buffer.concat(chunks), name: 'standard input' };
  }
  try {
    return { bytes: readFileSync(path), name: path };
  } catch (e) {
    console.error(`taskling: cannot read the input file ${path}: ${(e as Error).message}`);
    return undefined;
  }
}

/** Reads the input file (or stdin for `-`/undefined) as UTF-8 text (not binary); prints and returns undefined on failure. */
export async function readInput(path: string | undefined): Promise<string | undefined> {
  const got = await readInputBytes(path);
  if (!got) return undefined;
  const r = decodeInput(got.bytes, got.name);
  if ('error' in r) {
    console.error(`taskling: ${r.error}`);
    return undefined;
  }
  return r.text;
}

/** One JSONL line as bytes decoded: its 1-based number and its text, or why it is not text. */
export interface RawLine {
  line: number;
  text?: string;
  error?: string;
}

/**
 * Splits JSONL bytes into lines (`\n`, `\r\n` or `\r`) and decodes each on its own, so one line
 * with an invalid UTF-8 byte gets its own error and every other line still gets its result.
 * Blank lines are dropped but counted in line numbers.
 */
export function splitJsonlBytes(bytes: Uint8Array): RawLine[] {
  const out: RawLine[] = [];
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let line = 1;
  const push = (end: number) => {
    const chunk = bytes.subarray(start, end);
    const text = decodeUtf8(chunk);
    if (text === undefined) out.push({ line, error: `line ${line} is not UTF-8 text (invalid byte sequence)` });
    else if (text.trim()) out.push(looksBinary(text) ? { line, error: `line ${line} holds binary data (NUL or control bytes), not text` } : { line, text });
  };
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0x0a && b !== 0x0d) continue;
    push(i);
    if (b === 0x0d && bytes[i + 1] === 0x0a) i++;
    start = i + 1;
    line++;
  }
  if (start < bytes.length) push(bytes.length);
  return out;
}
