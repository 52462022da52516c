import { rmSync } from 'node:fs';

type Stoppable = { stop(): Promise<void> };
type Stack = { broker: Stoppable; temporal: Stoppable; postgres: Stoppable; dir: string };

export default async function globalTeardown(): Promise<void> {
  const stack = (globalThis as Record<string, unknown>).__fleetStack as Stack | undefined;
  if (!stack) return;
  await Promise.allSettled([stack.broker.stop(), stack.temporal.stop(), stack.postgres.stop()]);
  rmSync(stack.dir, { recursive: true, force: true });
}
