// Moved to src/core/import/onnxBuilder.ts (shared with the GGUF importer); re-exported for the tools.
export * from '../../src/core/import/onnxBuilder';
