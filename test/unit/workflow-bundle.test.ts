import { bundleWorkflowCode } from '@temporalio/worker';

/**
 * The workflow bundle holds no zod. A worker evaluates the bundle's modules for every workflow it
 * starts, so each zod schema a workflow's imports define was built again per robot, lid cycle and
 * command: in a profile of 500 robot workflows starting, zod's constructors were the bundle's
 * busiest code, and the bundle was 3.1 MB instead of 1.9. Workflows import the zod-free halves of
 * the domain (device-values, driveu-state, command-status, rollout, software-sweep).
 */
test('the workflow bundle includes no zod', async () => {
  const silent = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} };
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: silent });
  const modules = [...code.matchAll(/\/\*{3}\/ "([^"]+)"/g)].map((m) => m[1]);
  expect(modules.some((m) => m.startsWith('./workflows/robot'))).toBe(true);
  expect(modules.filter((m) => m.includes('node_modules/zod/'))).toEqual([]);
}, 120_000);
