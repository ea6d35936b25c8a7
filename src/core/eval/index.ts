/** Evaluation: labelled records, metrics, reports and their comparison (see each module). */
export * from './records';
export * from './metrics';
export * from './report';
export * from './compare';
export { evaluate, type EvaluateOptions } from './run';
