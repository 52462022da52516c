import { writeHeartbeats } from '../store/devices';
import type { RawHeartbeat } from '../domain/heartbeat';
import { startApiHarness, type ApiHarness } from './api/harness';
import { ingestedHeartbeat } from './support/robot';

/**
 * A Device's `componentStatuses[].updatedAt` from the projection is when the component's code took
 * its value, as the robot workflow's live view says it: the heartbeat upsert (`writeHeartbeats`)
 * writes a component's row only when its code changes, and only from the robot's newest heartbeat.
 */

const KEY = 'component-statuses-reader-0123456789';
const T0 = Date.UTC(2026, 0, 1, 12);

let api: ApiHarness;

beforeAll(async () => {
  api = await startApiHarness({ API_KEYS: `${KEY}:read`, LOG_LEVEL: 'silent' });
}, 60_000);

afterAll(async () => {
  await api?.stop();
});

/** Heartbeats written as the ingest worker writes them: each call one batch. */
async function write(serial: string, timestamp: number, components: RawHeartbeat['components']): Promise<void> {
  await writeHeartbeats(api.prisma, [ingestedHeartbeat(serial, { timestamp, components })]);
}

async function shown(serial: string): Promise<Record<string, [string, string]>> {
  const res = await api.get(`/v1/devices/${serial}`, KEY);
  expect(res.status).toBe(200);
  return Object.fromEntries(
    res.body.componentStatuses.map((c: { componentName: string; statusCode: string; updatedAt: string }) => [c.componentName, [c.statusCode, c.updatedAt]]),
  );
}

const at = (ms: number) => new Date(ms).toISOString();

test('a component keeps the time its code changed while later heartbeats repeat it', async () => {
  await write('CS-1', T0, { GPS: 'OK', CAMERAS: 'OK' });
  await write('CS-1', T0 + 1000, { GPS: 'OK', CAMERAS: 'TIMEOUT' });
  await write('CS-1', T0 + 2000, { GPS: 'OK', CAMERAS: 'TIMEOUT' });
  expect(await shown('CS-1')).toEqual({
    GPS: ['HARDWARE_STATUS_CODE_OK', at(T0)],
    CAMERAS: ['HARDWARE_STATUS_CODE_TIMEOUT', at(T0 + 1000)],
  });
  await write('CS-1', T0 + 3000, { GPS: 'OK', CAMERAS: 'OK' });
  expect((await shown('CS-1')).CAMERAS).toEqual(['HARDWARE_STATUS_CODE_OK', at(T0 + 3000)]);
});

test('a late heartbeat does not bring back an older code', async () => {
  await write('CS-2', T0, { GPS: 'OK' });
  await write('CS-2', T0 + 2000, { GPS: 'OK' });
  await write('CS-2', T0 + 1000, { GPS: 'CRITICAL_FAULT' });
  expect(await shown('CS-2')).toEqual({ GPS: ['HARDWARE_STATUS_CODE_OK', at(T0)] });
});

test('several robots in one batch: only the changed component is rewritten', async () => {
  await writeHeartbeats(api.prisma, [
    ingestedHeartbeat('CS-3', { timestamp: T0, components: { GPS: 'OK' } }),
    ingestedHeartbeat('CS-4', { timestamp: T0, components: { GPS: 'OK' } }),
  ]);
  await writeHeartbeats(api.prisma, [
    ingestedHeartbeat('CS-3', { timestamp: T0 + 1000, components: { GPS: 'NON_CRITICAL_FAULT' } }),
    ingestedHeartbeat('CS-4', { timestamp: T0 + 1000, components: { GPS: 'OK' } }),
  ]);
  expect((await shown('CS-3')).GPS).toEqual(['HARDWARE_STATUS_CODE_NON_CRITICAL_FAULT', at(T0 + 1000)]);
  expect((await shown('CS-4')).GPS).toEqual(['HARDWARE_STATUS_CODE_OK', at(T0)]);
});
