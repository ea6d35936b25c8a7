/**
 * One reference token of a JSON Pointer (RFC 6901 section 3): `~` -> `~0`, `/` -> `~1`.
 * Used wherever a pointer to a schema, adapter or result location is built (core and panel).
 */
export function escapePointerToken(key: string | number): string {
  return String(key).replace(/~/g, '~0').replace(/\//g, '~1');
}
