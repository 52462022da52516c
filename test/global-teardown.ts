type Stoppable = { stop(): Promise<void> };

export default async function globalTeardown(): Promise<void> {
  const stack = (globalThis as Record<string, unknown>).__fleetStack as Record<string, Stoppable> | undefined;
  if (!stack) return;
  await Promise.allSettled([stack.broker.stop(), stack.temporal.stop(), stack.postgres.stop()]);
}
