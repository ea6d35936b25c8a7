// Lint rules: typescript-eslint recommended, plus the layer seam from ../shared/docs/design.md:
// only src/host and src/extension.ts may import `vscode`; core stays free of worker_threads.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', 'models/**', 'media/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Benchmark peers load other runtimes dynamically; their APIs are untyped at that seam.
    files: ['bench/peers/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['src/core/**/*.ts', 'src/worker/**/*.ts', 'src/shared/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'Only src/host may import vscode.' }] }],
    },
  },
  {
    files: ['src/core/**/*.ts', 'src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [
          { name: 'vscode', message: 'Only src/host may import vscode.' },
          { name: 'worker_threads', message: 'core/ and shared/ must not depend on worker_threads.' },
          { name: 'node:worker_threads', message: 'core/ and shared/ must not depend on worker_threads.' },
        ],
      }],
    },
  },
);
