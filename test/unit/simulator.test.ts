import { parseHeartbeat } from '../../domain/heartbeat';
import { RobotSimulator, simulatedSerials, toHeartbeat } from '../../simulator/robot-simulator';

/** The simulator is only constructed here, never started: no broker is contacted. */
function simulator(count: number) {
  return new RobotSimulator({ mqttUrl: 'mqtt://127.0.0.1:1', serials: simulatedSerials(count) });
}

function parse(serial: string, payload: unknown) {
  return parseHeartbeat(`robot/${serial}/status`, JSON.stringify(payload), Date.now());
}

describe('simulated heartbeats', () => {
  it('names robots SIM0001, SIM0002, ...', () => {
    expect(simulatedSerials(3)).toEqual(['SIM0001', 'SIM0002', 'SIM0003']);
    expect(simulatedSerials(1, 'T')).toEqual(['T0001']);
  });

  it('pass parseHeartbeat for every robot of a fleet', () => {
    const sim = simulator(25);
    for (const robot of sim.robots.values()) {
      const result = parse(robot.serial, toHeartbeat(robot, 1704891234567));
      expect(result).toMatchObject({ ok: true, heartbeat: { serial: robot.serial, timestamp: 1704891234567 } });
    }
  });

  it('carry a queued PIN entry and a component fault through parsing', () => {
    const sim = simulator(3);
    sim.enterPin('SIM0002', '4321');
    sim.setComponent('SIM0002', 'CAMERAS', 'CRITICAL_FAULT');
    sim.setComponent('SIM0002', 'LIDAR', 'TIMEOUT');
    sim.setLid('SIM0002', true);
    const result = parse('SIM0002', toHeartbeat(sim.robot('SIM0002')));
    if (!result.ok) throw new Error(result.reason);
    expect(result.heartbeat.events).toEqual([{ type: 'PIN_ENTRY', pin: '4321', timestamp: expect.any(Number) }]);
    expect(result.heartbeat.components).toMatchObject({ CAMERAS: 'CRITICAL_FAULT', LIDAR: 'TIMEOUT', GPS: 'OK' });
    expect(result.heartbeat.lidOpen).toBe(true);
    const other = parse('SIM0001', toHeartbeat(sim.robot('SIM0001')));
    expect(other.ok && other.heartbeat.events).toEqual([]);
    expect(other.ok && other.heartbeat.components.CAMERAS).toBe('OK');
  });
});
