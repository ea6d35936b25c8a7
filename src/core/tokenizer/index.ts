/** Tokenizer module: Gemma 3 tokenizer, chat prompt, streaming detokenizer. */
export * from './tokenizer';
export * from './incrementalDetokenizer';
