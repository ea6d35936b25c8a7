/**
 * Filled adapter templates for *New Adapter…* and *Create Adapter from Selection…* (pure; no
 * `vscode` import). Every template is a valid manifest, so a new adapter loads before the user
 * has edited anything. Labels and entity types are written as names alone (the manifest's
 * shorthand; a description can be added by turning one into `{ "name", "description" }`), so the
 * prompt holds no placeholder descriptions.
 */
import type { TaskKindName } from '../../shared/panelProtocol';

export interface TemplateOptions {
  /** Adapter id (lowercase letters, digits, `.`, `_`, `-`). */
  id: string;
  name: string;
  /** Label names (classify) or entity type names (extract); defaults per task when empty. */
  items?: string[];
  /** A sample input (the selection) for a first example or the instruction's context. */
  sample?: string;
  /** For classify with a sample: the label that fits it. */
  sampleLabel?: string;
}

/** "Support tickets!" -> "support-tickets" (valid adapter id, at most 64 chars). */
export function adapterIdFrom(name: string): string {
  const id = name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-._]+|[-._]+$/g, '').slice(0, 64);
  return id || 'my-adapter';
}

/** "billing, bug report ,, refund" -> ["billing", "bug report", "refund"] (trimmed, unique, non-empty). */
export function parseItems(text: string): string[] {
  return [...new Set(text.split(/[,;\n]/).map((s) => s.trim()).filter(Boolean))];
}

/** The manifest object of a new adapter of `task`. */
export function adapterTemplate(task: TaskKindName, o: TemplateOptions): Record<string, unknown> {
  const head = {
    id: o.id,
    name: o.name,
    description: 'What this adapter is for (shown in pickers).',
    version: '0.1.0',
    task,
  };
  const sample = o.sample?.trim() ? o.sample.trim().slice(0, 2000) : undefined;
  if (task === 'classify') {
    const labels = o.items?.length ? o.items : ['yes', 'no'];
    const label = o.sampleLabel && labels.includes(o.sampleLabel) ? o.sampleLabel : undefined;
    return {
      ...head,
      instruction: `Classify the text into one of these labels: ${labels.join(', ')}. Answer with one label.`,
      labels,
      examples: sample && label ? [{ input: sample, output: label }] : [],
      generation: { maxNewTokens: 8, temperature: 0 },
    };
  }
  if (task === 'extract') {
    const types = o.items?.length ? o.items : ['PERSON', 'ORG'];
    return {
      ...head,
      instruction: `List every mention of ${types.join(', ')} in the text, copying each mention exactly as written.`,
      entityTypes: types,
      examples: [],
      generation: { maxNewTokens: 256, temperature: 0 },
    };
  }
  const props = o.items?.length ? o.items : ['title', 'date'];
  return {
    ...head,
    instruction: 'Convert the text into JSON with the fields of the schema. Use an empty string when the text does not say.',
    schema: {
      type: 'object',
      properties: Object.fromEntries(props.map((p) => [p, { type: 'string', description: `The ${p}.` }])),
      required: props,
      additionalProperties: false,
    },
    examples: [],
    generation: { maxNewTokens: 256, temperature: 0 },
  };
}
