import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Two rules that matter more than style: no floating promises anywhere (a forgotten await loses
 * errors and ordering), and no Node built-ins or I/O libraries in workflow code (workflows must
 * stay deterministic; effects belong in activities).
 */
const noIo = 'Workflows and domain code do no I/O: use an activity.';
const nodeBuiltins = (allowed = []) => ({
  group: ['node:*', 'fs', 'path', 'http', 'https', 'net', 'crypto', 'child_process', 'os', ...allowed.map((a) => `!${a}`)],
  message: noIo,
});
const ioLibraries = {
  group: ['pg', 'mqtt', 'express', '@prisma/*', '**/generated/**', '@temporalio/client', '@temporalio/worker', '@temporalio/activity', '@aws-sdk/*', 'amqplib', '**/infra/**', '**/activities', '**/activities/*'],
  message: noIo,
  allowTypeImports: true,
};

// The rooms of the house (STYLE.md): SQL only in store/ and infra/, Temporal's client only in clients/ and workers/.
const sqlLibraries = { group: ['pg', '@prisma/*', '**/generated/**'], message: 'SQL lives in store/ (connections in infra/): call a store function.' };
const temporalClient = { group: ['@temporalio/client'], message: 'Workflows are started, signalled and queried in clients/: call a clients function.' };
const testCode = { group: ['**/test/**'], message: 'Product code and benchmarks do not import tests: move what both need out of test/.' };
const productCode = ['*.ts', 'api/**/*.ts', 'activities/**/*.ts', 'ingest/**/*.ts', 'outbox/**/*.ts', 'simulator/**/*.ts', 'clients/**/*.ts', 'store/**/*.ts', 'infra/**/*.ts'];

export default tseslint.config(
  { ignores: ['node_modules/', 'generated/', '.data/', '.tools/', 'coverage/', 'dist/', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: productCode,
    ignores: ['store/**', 'infra/**', 'prisma.config.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [sqlLibraries, testCode] }] },
  },
  {
    files: productCode,
    ignores: ['clients/**', 'store/**', 'infra/**', 'prisma.config.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [sqlLibraries, temporalClient, testCode] }] },
  },
  {
    files: ['store/**/*.ts', 'infra/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [temporalClient, testCode] }] },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [nodeBuiltins(), ioLibraries, testCode] }] },
  },
  {
    // Pure code may hash (node:crypto is deterministic computation), but does no I/O.
    files: ['domain/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [nodeBuiltins(['node:crypto', 'crypto']), ioLibraries, testCode] }] },
  },
  {
    files: ['bench/**/*.ts', 'workers/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [testCode] }] },
  },
);
