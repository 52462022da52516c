import type { ComponentCode, Heartbeat } from '../../domain/heartbeat';
import { deviceSchema } from '../../domain/device';
import {
  applyHeartbeat,
  checkSilence,
  initialRobotState,
  placeLateHeartbeat,
  silenceBackstop,
  robotStateToDevice,
  type ComponentSighting,
  type RobotState,
} from '../../domain/robot-state';
import { SILENCE_BACKSTOP_EXTRA_MS } from '../../domain/silence';
import { takeHeartbeats } from '../../domain/heartbeat-batch';
import { initialLidTracker } from '../../domain/lid';

const serial = 'ABC123';
const created = Date.parse('2024-01-10T12:00:00Z');
const offlineAfterMs = 60_000;

function heartbeat(timestamp: number, patch: Partial<Heartbeat> = {}): Heartbeat {
  return { serial, timestamp, receivedAt: timestamp + 50, batteries: [], components: {}, events: [], ...patch };
}

/** Applies heartbeats in order; returns the final state and the types of every event raised. */
function run(...hbs: Heartbeat[]): { state: RobotState; events: ReturnType<typeof applyHeartbeat>['events'] } {
  let state = initialRobotState(serial, created);
  const events: ReturnType<typeof applyHeartbeat>['events'] = [];
  for (const hb of hbs) {
    const t = applyHeartbeat(state, hb);
    state = t.state;
    events.push(...t.events);
  }
  return { state, events };
}

const withComponent = (timestamp: number, code: ComponentCode, name = 'CAMERAS') => heartbeat(timestamp, { components: { GPS: 'OK', [name]: code } });

describe('applyHeartbeat', () => {
  it('brings a robot online on its first heartbeat with one ConnectivityChanged', () => {
    const hb = heartbeat(created + 1000);
    const { state, events } = run(hb);
    expect(state.online).toBe(true);
    expect(state.onlineChangedAt).toBe(hb.receivedAt);
    expect(state.lastSeenAt).toBe(hb.receivedAt);
    expect(state.lastHeartbeatAt).toBe(hb.timestamp);
    expect(state.fleetStatus).not.toBe('OFFLINE');
    expect(events).toEqual([
      {
        type: 'Device.ConnectivityChanged',
        serial,
        occurredAt: new Date(hb.receivedAt).toISOString(),
        data: { deviceName: 'devices/ABC123', online: true, previousOnline: false, changedAt: new Date(hb.receivedAt).toISOString() },
      },
    ]);
  });

  it('raises no event for later heartbeats while online', () => {
    const { events } = run(heartbeat(created + 1000), heartbeat(created + 2000), heartbeat(created + 3000));
    expect(events.map((e) => e.type)).toEqual(['Device.ConnectivityChanged']);
  });

  it('ignores a duplicate or older heartbeat', () => {
    const first = run(heartbeat(created + 2000, { lidOpen: false }));
    for (const stale of [heartbeat(created + 2000, { lidOpen: true }), heartbeat(created + 1000, { components: { GPS: 'CRITICAL_FAULT' } })]) {
      const t = applyHeartbeat(first.state, stale);
      expect(t.events).toEqual([]);
      expect(t.state).toEqual(first.state);
    }
  });

  it('raises HealthDegraded when a component faults, again on another fault code, and HealthRestored on OK', () => {
    const { state, events } = run(
      withComponent(created + 1000, 'OK'),
      withComponent(created + 2000, 'TIMEOUT'),
      withComponent(created + 3000, 'TIMEOUT'),
      withComponent(created + 4000, 'CRITICAL_FAULT'),
      withComponent(created + 5000, 'OK'),
      withComponent(created + 6000, 'OK'),
    );
    const health = events.filter((e) => e.type !== 'Device.ConnectivityChanged');
    expect(health.map((e) => [e.type, e.data.statusCode, e.occurredAt])).toEqual([
      ['Device.HealthDegraded', 'HARDWARE_STATUS_CODE_TIMEOUT', new Date(created + 2000).toISOString()],
      ['Device.HealthDegraded', 'HARDWARE_STATUS_CODE_CRITICAL_FAULT', new Date(created + 4000).toISOString()],
      ['Device.HealthRestored', 'HARDWARE_STATUS_CODE_OK', new Date(created + 5000).toISOString()],
    ]);
    expect(health.every((e) => e.data.componentName === 'CAMERAS' && e.data.deviceName === 'devices/ABC123')).toBe(true);
    expect(health[0].data).toHaveProperty('detectedAt');
    expect(health[2].data).toHaveProperty('restoredAt');
    expect(state.components.CAMERAS).toEqual({ code: 'OK', since: created + 5000 });
  });

  describe('a late heartbeat (older than the newest applied), placed by robot time', () => {
    const at = (s: number) => created + s * 1000;
    /** Takes one batch as the robot workflow does (domain/heartbeat-batch.ts); the health events raised, briefly. */
    function takeBatch(state: RobotState, seen: ComponentSighting[], batch: Heartbeat[]) {
      const taken = takeHeartbeats({ state, lidTracker: initialLidTracker(), componentsSeen: seen }, batch, { placeLate: true, lidService: false });
      const events = taken.events
        .filter((e) => e.type !== 'Device.ConnectivityChanged')
        .map((e) => `${e.type.slice(7)} ${String(e.data.statusCode).slice(21)}@${(Date.parse(e.occurredAt) - created) / 1000}`);
      return { state: taken.book.state, seen: taken.book.componentsSeen, events };
    }

    it('raises a fault and its recovery that newer heartbeats overtook, dated by the robot, once', () => {
      // OK at 1 and 10 s came first; the camera timed out at 2 s and was OK again at 3 s.
      const first = takeBatch(initialRobotState(serial, created), [], [withComponent(at(1), 'OK'), withComponent(at(10), 'OK')]);
      const late = takeBatch(first.state, first.seen, [withComponent(at(2), 'TIMEOUT'), withComponent(at(3), 'OK')]);
      expect(late.events).toEqual(['HealthDegraded TIMEOUT@2', 'HealthRestored OK@3']);
      expect(late.state.components.CAMERAS).toEqual({ code: 'OK', since: at(3) });
      // Resent once more, or in two signals: nothing new.
      expect(takeBatch(late.state, late.seen, [withComponent(at(2), 'TIMEOUT'), withComponent(at(3), 'OK')]).events).toEqual([]);
      const split = takeBatch(first.state, first.seen, [withComponent(at(2), 'TIMEOUT')]);
      expect(split.events).toEqual(['HealthDegraded TIMEOUT@2', 'HealthRestored OK@10']);
      expect(takeBatch(split.state, split.seen, [withComponent(at(3), 'OK'), withComponent(at(2.5), 'TIMEOUT')]).events).toEqual([]);
    });

    it('raises a recovery and the fault again for a late OK inside a fault', () => {
      const first = takeBatch(initialRobotState(serial, created), [], [withComponent(at(1), 'CRITICAL_FAULT'), withComponent(at(10), 'CRITICAL_FAULT')]);
      expect(takeBatch(first.state, first.seen, [withComponent(at(4), 'OK')]).events).toEqual(['HealthRestored OK@4', 'HealthDegraded CRITICAL_FAULT@10']);
    });

    it('leaves alone a late heartbeat from before the code decided last, or about a component never reported', () => {
      const first = takeBatch(initialRobotState(serial, created), [], [withComponent(at(1), 'OK'), withComponent(at(5), 'TIMEOUT'), withComponent(at(9), 'TIMEOUT')]);
      expect(takeBatch(first.state, first.seen, [withComponent(at(3), 'CRITICAL_FAULT')]).events).toEqual([]);
      const t = placeLateHeartbeat(first.state, heartbeat(at(7), { components: { LIDAR: 'CRITICAL_FAULT' } }), first.seen);
      expect(t).toEqual({ state: first.state, events: [] });
    });
  });

  it('raises HealthDegraded for a component that is faulty in the first heartbeat', () => {
    const { events } = run(withComponent(created + 1000, 'NON_CRITICAL_FAULT'));
    expect(events.map((e) => e.type)).toEqual(['Device.ConnectivityChanged', 'Device.HealthDegraded']);
  });

  it('counts READY as healthy', () => {
    const readyFirst = run(withComponent(created + 1000, 'READY'), withComponent(created + 2000, 'OK'), withComponent(created + 3000, 'READY'));
    expect(readyFirst.events.map((e) => e.type)).toEqual(['Device.ConnectivityChanged']);
    const restored = run(withComponent(created + 1000, 'CRITICAL_FAULT'), withComponent(created + 2000, 'READY'));
    expect(restored.events.map((e) => e.type)).toEqual(['Device.ConnectivityChanged', 'Device.HealthDegraded', 'Device.HealthRestored']);
    expect(restored.events[2].data.statusCode).toBe('HARDWARE_STATUS_CODE_READY');
  });

  it('comes back online after being marked offline', () => {
    const { state } = run(heartbeat(created + 1000));
    const offline = checkSilence(state, null, state.lastSeenAt! + offlineAfterMs, offlineAfterMs).state;
    const back = applyHeartbeat(offline, heartbeat(created + 120_000));
    expect(back.state.online).toBe(true);
    expect(back.events.map((e) => [e.type, e.data.online, e.data.previousOnline])).toEqual([['Device.ConnectivityChanged', true, false]]);
  });
});

describe('offline detection', () => {
  const online = run(heartbeat(created + 1000)).state;
  const lastSeen = online.lastSeenAt!;

  it('puts the backstop offlineAfter plus its extra time past the last sighting while online, and none otherwise', () => {
    expect(silenceBackstop(online, offlineAfterMs)).toBe(lastSeen + offlineAfterMs + SILENCE_BACKSTOP_EXTRA_MS);
    expect(silenceBackstop(initialRobotState(serial, created), offlineAfterMs)).toBeNull();
    const offline = checkSilence(online, null, lastSeen + offlineAfterMs, offlineAfterMs).state;
    expect(silenceBackstop(offline, offlineAfterMs)).toBeNull();
  });

  it('keeps a robot online before the deadline', () => {
    const t = checkSilence(online, null, lastSeen + offlineAfterMs - 1, offlineAfterMs);
    expect(t.events).toEqual([]);
    expect(t.state.online).toBe(true);
  });

  it('keeps a robot online when a newer sighting moves the deadline, and remembers that sighting', () => {
    const seenLater = lastSeen + 30_000;
    const t = checkSilence(online, seenLater, lastSeen + offlineAfterMs + 1, offlineAfterMs);
    expect(t.events).toEqual([]);
    expect(t.state.online).toBe(true);
    expect(t.state.lastSeenAt).toBe(seenLater);
    expect(silenceBackstop(t.state, offlineAfterMs)).toBe(seenLater + offlineAfterMs + SILENCE_BACKSTOP_EXTRA_MS);
  });

  it('does not move lastSeenAt back for an older sighting', () => {
    const t = checkSilence(online, lastSeen - 10_000, lastSeen + 1, offlineAfterMs);
    expect(t.state.lastSeenAt).toBe(lastSeen);
  });

  it('marks the robot offline once after the deadline', () => {
    const now = lastSeen + offlineAfterMs + 5;
    const first = checkSilence(online, lastSeen, now, offlineAfterMs);
    expect(first.state.online).toBe(false);
    expect(first.state.onlineChangedAt).toBe(now);
    expect(first.state.fleetStatus).toBe('OFFLINE');
    expect(first.events).toEqual([
      {
        type: 'Device.ConnectivityChanged',
        serial,
        occurredAt: new Date(now).toISOString(),
        data: { deviceName: 'devices/ABC123', online: false, previousOnline: true, changedAt: new Date(now).toISOString() },
      },
    ]);
    const again = checkSilence(first.state, lastSeen, now + offlineAfterMs, offlineAfterMs);
    expect(again.events).toEqual([]);
    expect(again.state.online).toBe(false);
  });

  it('never marks offline a robot that was never seen', () => {
    const t = checkSilence(initialRobotState(serial, created), null, created + 10 * offlineAfterMs, offlineAfterMs);
    expect(t.events).toEqual([]);
    expect(t.state.online).toBe(false);
  });
});

describe('robotStateToDevice', () => {
  it('gives a seed Device for a robot never heard from', () => {
    const device = deviceSchema.parse(robotStateToDevice(initialRobotState(serial, created)));
    expect(device.name).toBe('devices/ABC123');
    expect(device.location).toBeNull();
    expect(device.connectivity.online).toBe(false);
    expect(device.createdAt).toBe(new Date(created).toISOString());
  });

  it('gives a seed Device from the latest heartbeat and decided state', () => {
    const hb = heartbeat(created + 5000, {
      location: { latitude: 37.7749, longitude: -122.4194, heading: 45.2 },
      batteries: [{ batteryIndex: 0, chargePercent: 87, isCharging: true, voltage: 48.2 }],
      components: { GPS: 'OK', LTE_ROUTERS: 'TIMEOUT', CAMERAS: 'READY' },
      lidOpen: true,
      network: { type: 'CELLULAR', signalStrength: -85 },
    });
    const { state } = run(heartbeat(created + 1000), hb);
    const device = robotStateToDevice(state);
    expect(deviceSchema.parse(device)).toEqual(device);
    const at = new Date(hb.timestamp).toISOString();
    expect(device.location).toEqual({ latitude: 37.7749, longitude: -122.4194, heading: 45.2, horizontalAccuracy: 0, altitude: 0, speedMph: 0, updatedAt: at });
    expect(device.batteries).toEqual([
      { batteryIndex: 0, chargePercent: 87, isCharging: true, voltage: 48.2, current: 0, temperature: 0, estimatedRangeMeters: 0, updatedAt: at },
    ]);
    expect(device.connectivity).toEqual({
      online: true,
      networkType: 'NETWORK_TYPE_CELLULAR',
      signalStrength: -85,
      updatedAt: new Date(created + 1050).toISOString(),
    });
    expect(device.lidState).toEqual({ isOpen: true, updatedAt: at });
    expect(device.componentStatuses.map((c) => [c.componentName, c.statusCode])).toEqual([
      ['CAMERAS', 'HARDWARE_STATUS_CODE_READY'],
      ['GPS', 'HARDWARE_STATUS_CODE_OK'],
      ['LTE_ROUTERS', 'HARDWARE_STATUS_CODE_TIMEOUT'],
    ]);
    expect(device.updatedAt).toBe(at);
  });
});
