/**
 * How every surface (CLI stderr, status bar, panel, result headers) names where a task ran.
 * Pure, no imports: the panel's bundle uses it too.
 */

/** "via http://host:8000/v1 (model NAME)" for a run on an inference server (url as normalised, ending in /v1). */
export function endpointLabel(url: string, model: string): string {
  return model ? `via ${url} (model ${model})` : `via ${url} (the server's only model)`;
}
