/**
 * Worker log lines (XGrammar's warnings, library console output; see shared/protocol's
 * `WorkerLog`) into the "Taskling" output channel, at their level, tagged with their source.
 * Pure; no `vscode` import: `channel` is any object with LogOutputChannel's level methods.
 */
import { formatWorkerLog, type WorkerLog, type WorkerLogLevel } from '../../shared/protocol';

/** The level methods of vscode.LogOutputChannel that worker lines use. */
export interface LevelLog {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const METHOD: Record<WorkerLogLevel, keyof LevelLog> = { trace: 'trace', debug: 'debug', info: 'info', warning: 'warn', error: 'error' };

/**
 * Writes `l` to `channel` as `[source] message` with the method of its level (`warning` ->
 * `warn`); an unknown level is written as info.
 */
export function writeWorkerLog(channel: LevelLog, l: WorkerLog): void {
  const method = Object.hasOwn(METHOD, l.level) ? METHOD[l.level] : 'info';
  channel[method](formatWorkerLog(l));
}
