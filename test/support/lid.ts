import { RobotSimulator } from '../../simulator/robot-simulator';
import { eventually, required, uniqueSerial, type TestFleet } from './fleet';

/** Helpers for the lid and command tests: a simulated robot of its own per test, and readers of the API. */

export async function simulatedRobot(fleet: TestFleet, opts: { lidAfterUnlock?: { openAfterMs: number; closeAfterMs: number } } = {}) {
  const serial = uniqueSerial('L');
  const sim = new RobotSimulator({ mqttUrl: required('MQTT_URL'), serials: [serial], intervalMs: 300, ...opts });
  await sim.start();
  await eventually(async () => expect((await fleet.api(`/v1/devices/${serial}`)).status).toBe(200));
  /** Publishes a heartbeat now, carrying the PIN entries typed since the last one. */
  const publish = () => sim.publish(sim.robot(serial));
  return { serial, sim, robot: () => sim.robot(serial), publish, stop: () => sim.stop() };
}

export const inMinutes = (minutes: number) => new Date(Date.now() + minutes * 60_000).toISOString();

export async function events(fleet: TestFleet, serial: string, type: string): Promise<any[]> {
  const res = await fleet.api(`/v1/events?serial=${serial}&type=${type}`);
  expect(res.status).toBe(200);
  return res.body.events;
}

export async function lidCycles(fleet: TestFleet, serial: string): Promise<any[]> {
  const res = await fleet.api(`/v1/devices/${serial}/lid-cycles`);
  expect(res.status).toBe(200);
  return res.body.lidCycles;
}

export async function command(fleet: TestFleet, serial: string, commandId: string): Promise<any> {
  const res = await fleet.api(`/v1/devices/${serial}/commands/${commandId}`);
  expect(res.status).toBe(200);
  return res.body;
}

/** Workflow history with its payloads decoded, to search for what must not be there. */
export async function historyText(fleet: TestFleet, workflowId: string): Promise<string> {
  const history = await fleet.temporal.workflow.getHandle(workflowId).fetchHistory();
  return JSON.stringify(history, (_key, value) => (value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value));
}

export const settle = (ms = 600) => new Promise((r) => setTimeout(r, ms));
