/** Integration tests share one real stack (test/global-setup.ts) and run one file at a time. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The fault scenarios take minutes: `npm run test:faults` (jest.faults.config.js) runs them.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/faults/'],
  // Type checking is `tsc`'s job (npm test runs it first); here CommonJS output lets Jest load the
  // generated Prisma client, whose dynamic import() Jest cannot run natively.
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: { module: 'commonjs', moduleResolution: 'node', isolatedModules: true } }] },
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  // Long enough for a test's waits on a machine whose other core is busy (.ci/run checks it).
  testTimeout: 180_000,
  maxWorkers: 1,
};
