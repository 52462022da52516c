import mqtt, { type MqttClient } from 'mqtt';
import type { ComponentCode, RawHeartbeat } from '../domain/heartbeat';

/**
 * Simulated robots publishing contract heartbeats on `robot/<serial>/status`, with knobs a test
 * or a demo turns: go silent, open the lid, fail a component, enter a PIN.
 */

export type SimulatedRobot = {
  serial: string;
  lat: number;
  lng: number;
  heading: number;
  charge: number;
  lidOpen: boolean;
  silent: boolean;
  components: Record<string, ComponentCode>;
  pendingEvents: NonNullable<RawHeartbeat['events']>;
};

const HOME = { lat: 37.7749, lng: -122.4194 };

export function simulatedSerials(count: number, prefix = 'SIM'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(4, '0')}`);
}

export class RobotSimulator {
  readonly robots = new Map<string, SimulatedRobot>();
  private client: MqttClient | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: { mqttUrl: string; serials: string[]; intervalMs?: number }) {
    opts.serials.forEach((serial, i) => this.robots.set(serial, newRobot(serial, i)));
  }

  async start(): Promise<void> {
    this.client = await mqtt.connectAsync(this.opts.mqttUrl, { clientId: `simulator-${process.pid}-${Date.now()}`, reconnectPeriod: 1000 });
    await this.publishAll();
    this.timer = setInterval(() => void this.publishAll().catch(() => undefined), this.opts.intervalMs ?? 1000);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.client?.endAsync();
  }

  robot(serial: string): SimulatedRobot {
    const robot = this.robots.get(serial);
    if (!robot) throw new Error(`no simulated robot ${serial}`);
    return robot;
  }

  setSilent(serial: string, silent: boolean): void {
    this.robot(serial).silent = silent;
  }

  setLid(serial: string, open: boolean): void {
    this.robot(serial).lidOpen = open;
  }

  setComponent(serial: string, component: string, code: ComponentCode): void {
    this.robot(serial).components[component] = code;
  }

  enterPin(serial: string, pin: string): void {
    this.robot(serial).pendingEvents.push({ type: 'PIN_ENTRY', pin, timestamp: Date.now() });
  }

  /** Publishes one heartbeat for every robot that is not silent; resolves once the broker has them. */
  async publishAll(): Promise<void> {
    await Promise.all([...this.robots.values()].filter((r) => !r.silent).map((r) => this.publish(r)));
  }

  async publish(robot: SimulatedRobot): Promise<void> {
    if (!this.client) throw new Error('simulator not started');
    step(robot);
    const heartbeat = toHeartbeat(robot);
    robot.pendingEvents = [];
    await this.client.publishAsync(`robot/${robot.serial}/status`, JSON.stringify(heartbeat), { qos: 1 });
  }
}

function newRobot(serial: string, i: number): SimulatedRobot {
  return {
    serial,
    lat: HOME.lat + (i % 10) * 0.001,
    lng: HOME.lng + Math.floor(i / 10) * 0.001,
    heading: (i * 37) % 360,
    charge: 60 + (i % 40),
    lidOpen: false,
    silent: false,
    components: { GPS: 'OK', CAMERAS: 'OK', SEGWAY_BASE: 'OK', LTE_ROUTERS: 'OK', EMERGENCY_BUTTON: 'OK' },
    pendingEvents: [],
  };
}

/** A slow drive around the block and a slow drain: enough for maps and battery filters to show life. */
function step(robot: SimulatedRobot): void {
  robot.heading = (robot.heading + 3) % 360;
  const rad = (robot.heading * Math.PI) / 180;
  robot.lat += Math.cos(rad) * 0.00002;
  robot.lng += Math.sin(rad) * 0.00002;
  robot.charge = Math.max(5, robot.charge - 0.01);
}

export function toHeartbeat(robot: SimulatedRobot, timestamp = Date.now()): RawHeartbeat {
  return {
    serial: robot.serial,
    timestamp,
    gps: { lat: robot.lat, lng: robot.lng, heading: robot.heading, horizontal_accuracy: 3.5, altitude: 10, speed_mph: 3.1 },
    batteries: [{ index: 0, charge_percent: Math.round(robot.charge), is_charging: false, voltage: 48.2, current: -5.3, temperature: 32.5 }],
    components: { ...robot.components },
    lid: { is_open: robot.lidOpen },
    network: { type: 'CELLULAR', signal_strength: -85 },
    ...(robot.pendingEvents.length ? { events: robot.pendingEvents } : {}),
  };
}
