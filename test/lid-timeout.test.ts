import { eventually, startFleet, type TestFleet } from './support/fleet';
import { events, inMinutes, lidCycles, settle, simulatedRobot } from './support/lid';

/** A lid left open: a short LID_OPEN_TIMEOUT_SECONDS, so the cycle times out while the test waits. */

let fleet: TestFleet;

beforeAll(async () => {
  fleet = await startFleet({ LID_OPEN_TIMEOUT_SECONDS: '2' });
});

afterAll(async () => {
  await fleet?.stop();
});

test('a lid left open past the timeout ends its cycle in TIMEOUT once, with the PIN context, and still records the close', async () => {
  const r = await simulatedRobot(fleet);
  try {
    const set = await fleet.request('PUT', `/v1/devices/${r.serial}/unlock-pin`, { pin: '3141', pinType: 'MERCHANT', contextId: 'delivery-77', expiresAt: inMinutes(10) });
    expect(set.status).toBe(200);
    r.sim.enterPin(r.serial, '3141');
    await r.publish();
    await eventually(() => expect(r.robot().unlocked).toBe(true));
    await r.sim.moveLid(r.serial, true);

    const timedOut = await eventually(async () => {
      const [cycle] = await lidCycles(fleet, r.serial);
      expect(cycle?.status).toBe('TIMEOUT');
      return cycle;
    });
    expect(timedOut).toMatchObject({ contextId: 'delivery-77', forced: false, endedAt: null, durationSeconds: null, timeoutSeconds: 2 });
    const [timeout] = await events(fleet, r.serial, 'LidCycle.Timeout');
    expect(timeout.data).toMatchObject({ cycleId: timedOut.cycleId, contextId: 'delivery-77', timeoutSeconds: 2 });

    await r.sim.moveLid(r.serial, false);
    const closed = await eventually(async () => {
      const res = await fleet.api(`/v1/lid-cycles/${timedOut.cycleId}`);
      expect(res.body.endedAt).not.toBeNull();
      return res.body;
    });
    expect(closed.status).toBe('TIMEOUT');
    expect(closed.durationSeconds).toBeGreaterThan(2);

    await settle(1000);
    expect(await events(fleet, r.serial, 'LidCycle.Timeout')).toHaveLength(1);
    expect(await events(fleet, r.serial, 'LidCycle.Started')).toHaveLength(1);
    expect(await events(fleet, r.serial, 'LidCycle.Completed')).toEqual([]);
  } finally {
    await r.stop();
  }
});
