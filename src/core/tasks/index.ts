/** The three tasks behind one entry point: a task adapter and a selection in, a result out. */
import type { TaskAdapter } from '../adapters/manifest';
import { TasklingError } from '../errors';
import { checkTaskOptions } from '../params';
import { classify, ClassifyResult } from './classify';
import { extract, ExtractResult } from './extract';
import { toJson, ToJsonResult } from './toJson';
import { TaskOptions, TaskRuntime } from './context';

export { TaskRuntime, modelPrefixStore, PREFIX_STORE_DIR } from './context';
export type { TaskOptions, TaskPhase, Provenance } from './context';
export type { ClassifyResult, ExtractResult, ToJsonResult };
export type TaskResult = ClassifyResult | ExtractResult | ToJsonResult;

/** Largest selection accepted at all, in UTF-16 code units (longer ones are refused up front). */
export const MAX_SELECTION_CHARS = 1_000_000;

/**
 * Runs `adapter` on `text`.
 * @throws TasklingError `INVALID_INPUT` for empty, binary-looking (NUL bytes, or over 5% control /
 *   U+FFFD replacement characters) or over-long text; `INVALID_REQUEST` for an option out of
 *   range (see checkTaskOptions: `maxNewTokens` -1 or 2.5); and the task's own errors.
 */
export async function runTask(runtime: TaskRuntime, adapter: TaskAdapter, text: string, opts: TaskOptions = {}): Promise<TaskResult> {
  checkTaskOptions(opts);
  if (!text.trim()) throw new TasklingError('INVALID_INPUT', 'The selection is empty: select some text first.');
  if (text.length > MAX_SELECTION_CHARS) throw new TasklingError('INVALID_INPUT', `The selection is ${text.length} characters; the limit is ${MAX_SELECTION_CHARS}.`);
  if (text.includes('\u0000')) throw new TasklingError('INVALID_INPUT', 'The selection contains NUL bytes: it looks like binary data, not text.');
  let odd = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0xfffd || (c < 0x20 && c !== 9 && c !== 10 && c !== 13 && c !== 12)) odd++;
  }
  if (odd >= 4 && odd > text.length * 0.05) {
    throw new TasklingError('INVALID_INPUT', `The selection looks like binary data (${odd} of ${text.length} characters are control or replacement characters), not text.`);
  }
  switch (adapter.task) {
    case 'classify': return classify(runtime, adapter, text, opts);
    case 'extract': return extract(runtime, adapter, text, opts);
    case 'toJson': return toJson(runtime, adapter, text, opts);
  }
}
