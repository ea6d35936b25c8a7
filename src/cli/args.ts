/**
 * Minimal argv parsing for the CLI: `--name value`, `--flag`, `--name=value`, `--` and
 * positionals. Every command declares its options; anything else is a usage error (exit 2).
 */

/** Bad command-line usage: the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Options a command accepts: `'flag'` takes no value, `'value'` takes one. */
export type OptionSpec = Readonly<Record<string, 'flag' | 'value'>>;

export interface ParsedArgs {
  /** The command name, used in messages (`taskling <cmd>: ...`). */
  cmd: string;
  positionals: string[];
  options: Map<string, string | true>;
}

/** `taskling <cmd>: <message>` as a {@link UsageError}. */
export function usageError(cmd: string, message: string): UsageError {
  return new UsageError(`taskling ${cmd}: ${message}`);
}

/**
 * Parses `argv` (after the command name) against the command's declared options.
 * A lone `-` is a positional (stdin); `--` ends the options.
 * @throws UsageError for an unknown option, a value option without a value, or a flag given a value.
 */
export function parseArgs(cmd: string, argv: readonly string[], spec: OptionSpec): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { positionals.push(...argv.slice(i + 1)); break; }
    if (a === '-h') { options.set('help', true); continue; }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      const kind = Object.prototype.hasOwnProperty.call(spec, name) ? spec[name] : undefined;
      if (!kind) throw usageError(cmd, `unknown option --${name} (see taskling help)`);
      if (kind === 'flag') {
        if (eq > 0) throw usageError(cmd, `--${name} takes no value (see taskling help)`);
        options.set(name, true);
      } else if (eq > 0) {
        options.set(name, a.slice(eq + 1));
      } else {
        const v = argv[i + 1];
        if (v === undefined || v.startsWith('--')) throw usageError(cmd, `--${name} needs a value (see taskling help)`);
        options.set(name, v);
        i++;
      }
    } else if (/^-[A-Za-z]/.test(a)) {
      throw usageError(cmd, `unknown option ${a} (see taskling help)`);
    } else positionals.push(a);
  }
  return { cmd, positionals, options };
}

/** String option or undefined. */
export function opt(p: ParsedArgs, name: string): string | undefined {
  const v = p.options.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** True when the flag was given. */
export function flag(p: ParsedArgs, name: string): boolean {
  return p.options.get(name) === true;
}

const INT_RE = /^[+-]?\d+$/;
const NUM_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Integer option (decimal digits only) or undefined.
 * @throws UsageError when present but not an integer >= `min` (when given).
 */
export function intOpt(p: ParsedArgs, name: string, min?: number): number | undefined {
  const v = opt(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!INT_RE.test(v.trim()) || !Number.isSafeInteger(n) || (min !== undefined && n < min)) {
    throw usageError(p.cmd, `--${name} must be an integer${min !== undefined ? ` >= ${min}` : ''}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/**
 * Number option or undefined.
 * @param range  `min` (inclusive), `above` (exclusive lower bound), `max` (inclusive).
 * @throws UsageError when present but not a finite number in range.
 */
export function numOpt(p: ParsedArgs, name: string, range: { min?: number; above?: number; max?: number } = {}): number | undefined {
  const v = opt(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  const ok = NUM_RE.test(v.trim()) && Number.isFinite(n)
    && (range.min === undefined || n >= range.min)
    && (range.above === undefined || n > range.above)
    && (range.max === undefined || n <= range.max);
  if (!ok) {
    const what = range.above !== undefined && range.max !== undefined ? ` in (${range.above}, ${range.max}]`
      : range.min !== undefined && range.max !== undefined ? ` in [${range.min}, ${range.max}]`
        : range.min !== undefined ? ` >= ${range.min}`
          : range.above !== undefined ? ` > ${range.above}`
            : range.max !== undefined ? ` <= ${range.max}` : '';
    throw usageError(p.cmd, `--${name} must be a number${what}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/**
 * String option restricted to `allowed`, or undefined.
 * @throws UsageError when present but not one of `allowed`.
 */
export function choiceOpt<T extends string>(p: ParsedArgs, name: string, allowed: readonly T[]): T | undefined {
  const v = opt(p, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw usageError(p.cmd, `--${name} must be one of ${allowed.join('|')}, got ${JSON.stringify(v)}`);
  return v as T;
}
