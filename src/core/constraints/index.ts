/** Constraints module: XGrammar token table, grammar cache, grammar matcher + token bitmask, JSON Schema capability report. */
export * from './xgrammarLoader';
export * from './grammarCompiler';
export * from './grammarConstraint';
export * from './schemaAnalysis';
export * from './userSchema';
