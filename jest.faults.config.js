/**
 * `npm run test:faults`: the fault scenarios of test/faults/ (docs/reliability.md). Each file
 * starts its own servers and pieces as processes (test/support/processes.ts), so there is no
 * shared global stack; they take minutes, so `npm test` leaves them out.
 */
const base = require('./jest.config');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/faults'],
  testPathIgnorePatterns: ['/node_modules/'],
  globalSetup: undefined,
  globalTeardown: undefined,
  testTimeout: 600_000,
};
