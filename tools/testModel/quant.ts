// Moved to src/core/import/blockQuant.ts (shared with the GGUF importer); re-exported for the tools and tests.
export * from '../../src/core/import/blockQuant';
