/** Task adapters on an OpenAI-compatible inference server (see each module). */
export * from './client';
export * from './tasks';
export * from './batch';
export * from './target';
export * from './eval';
