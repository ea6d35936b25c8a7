/** Minimal argv parsing for the CLI: `--name value`, `--flag`, `--name=value`, and positionals. */
export interface ParsedArgs {
  positionals: string[];
  options: Map<string, string | true>;
}

/**
 * Parses `argv` (without node and script). `flags` lists options that take no value.
 * @throws Error for an option that needs a value but has none.
 */
export function parseArgs(argv: readonly string[], flags: readonly string[] = []): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { positionals.push(...argv.slice(i + 1)); break; }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (eq > 0) options.set(name, a.slice(eq + 1));
      else if (flags.includes(name)) options.set(name, true);
      else {
        const v = argv[i + 1];
        if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
        options.set(name, v);
        i++;
      }
    } else positionals.push(a);
  }
  return { positionals, options };
}

/** String option or undefined. */
export function opt(p: ParsedArgs, name: string): string | undefined {
  const v = p.options.get(name);
  return typeof v === 'string' ? v : undefined;
}

/**
 * Numeric option or undefined.
 * @throws Error when present but not a finite number.
 */
export function numOpt(p: ParsedArgs, name: string): number | undefined {
  const v = opt(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
}
