import mqtt, { type MqttClient } from 'mqtt';
import type { ComponentCode, RawHeartbeat } from '../domain/heartbeat';
import { commandTypes, type CommandType } from '../domain/commands';

/**
 * Simulated robots publishing contract heartbeats on `robot/<serial>/status`, with knobs a test
 * or a demo turns: go silent, open the lid, fail a component, enter a PIN. They also answer
 * commands on `robot/<serial>/command` as robot firmware does: ignore a commandId seen before,
 * ack ACKNOWLEDGED then EXECUTED (or FAILED), unlock on UNLOCK_LID, keep a SET_PIN (Magic Lid)
 * and unlock by themselves when it is typed. With `lidAfterUnlock`, an unlocked robot opens its
 * lid and closes it again: a whole loading cycle. `sim/<serial>/keypad` (a PIN as the payload)
 * types on a robot's keypad from outside, for demos.
 */

/** How a robot answers commands: carry them out, refuse them, or stay silent (the server times out). */
export type CommandReply = 'execute' | 'fail' | 'ignore';

export type ReceivedCommand = { commandId: string; type: CommandType; parameters: Record<string, string>; issuedAt: number; expiresAt: number };

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
  unlocked: boolean;
  /** Magic Lid: the PIN the firmware checks itself (from SET_PIN). */
  localPin: { pin: string; expiresAt: number } | null;
  commandReply: CommandReply;
  /** Every distinct command received, in order. */
  commands: ReceivedCommand[];
  /** Robot clock of the last heartbeat and PIN entry: each is later than the one before. */
  lastTimestamp: number;
  lastPinAt: number;
};

const HOME = { lat: 37.7749, lng: -122.4194 };

export function simulatedSerials(count: number, prefix = 'SIM'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(4, '0')}`);
}

export class RobotSimulator {
  readonly robots = new Map<string, SimulatedRobot>();
  private client: MqttClient | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly lidTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly opts: {
      mqttUrl: string;
      serials: string[];
      intervalMs?: number;
      /** After an unlock, open the lid this much later and close it `closeAfterMs` after that. */
      lidAfterUnlock?: { openAfterMs: number; closeAfterMs: number };
      /** A persistent MQTT session (clean: false), as firmware keeps: commands sent while the connection is down wait at the broker. */
      persistentSession?: boolean;
    },
  ) {
    opts.serials.forEach((serial, i) => this.robots.set(serial, newRobot(serial, i)));
  }

  async start(): Promise<void> {
    this.client = await mqtt.connectAsync(this.opts.mqttUrl, { clientId: `simulator-${process.pid}-${Date.now()}`, reconnectPeriod: 1000, clean: !this.opts.persistentSession });
    this.client.on('message', (topic, payload) => void this.onMessage(topic, payload).catch(() => undefined));
    const serials = [...this.robots.keys()];
    await this.client.subscribeAsync(
      Object.fromEntries([...serials.map((s) => [`robot/${s}/command`, { qos: 1 as const }]), ...serials.map((s) => [`sim/${s}/keypad`, { qos: 0 as const }])]),
    );
    await this.publishAll();
    this.timer = setInterval(() => void this.publishAll().catch(() => undefined), this.opts.intervalMs ?? 1000);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const t of this.lidTimers) clearTimeout(t);
    await this.client?.endAsync();
  }

  setCommandReply(serial: string, reply: CommandReply): void {
    this.robot(serial).commandReply = reply;
  }

  /** Opens or closes the lid and publishes a heartbeat at once, as firmware reports a lid change. */
  async moveLid(serial: string, open: boolean): Promise<void> {
    this.setLid(serial, open);
    await this.publish(this.robot(serial));
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

  /** Types a PIN on the keypad: reported with the next heartbeat; a Magic Lid robot also checks it itself. */
  enterPin(serial: string, pin: string): void {
    const robot = this.robot(serial);
    robot.lastPinAt = Math.max(Date.now(), robot.lastPinAt + 1);
    robot.pendingEvents.push({ type: 'PIN_ENTRY', pin, timestamp: robot.lastPinAt });
    if (robot.localPin && robot.localPin.pin === pin && robot.localPin.expiresAt > Date.now()) this.unlock(robot);
  }

  private async onMessage(topic: string, payload: Buffer): Promise<void> {
    const keypad = /^sim\/([^/]+)\/keypad$/.exec(topic);
    if (keypad && this.robots.has(keypad[1])) {
      const pin = payload.toString().trim();
      if (/^\d{2,10}$/.test(pin)) this.enterPin(keypad[1], pin);
      return;
    }
    const m = /^robot\/([^/]+)\/command$/.exec(topic);
    const robot = m && this.robots.get(m[1]);
    if (!robot) return;
    const command = parseCommand(payload);
    if (!command || robot.commands.some((c) => c.commandId === command.commandId)) return;
    robot.commands.push(command);
    if (robot.commandReply === 'ignore') return;
    if (command.expiresAt <= Date.now()) return this.ack(robot, command.commandId, 'FAILED', 'expired');
    await this.ack(robot, command.commandId, 'ACKNOWLEDGED');
    if (robot.commandReply === 'fail') return this.ack(robot, command.commandId, 'FAILED', 'refused by the simulator');
    this.execute(robot, command);
    await this.ack(robot, command.commandId, 'EXECUTED');
  }

  private execute(robot: SimulatedRobot, command: ReceivedCommand): void {
    if (command.type === 'UNLOCK_LID') this.unlock(robot);
    else if (command.type === 'LOCK_LID') robot.unlocked = false;
    else if (command.type === 'SET_PIN') {
      const { pin, expiresAt, clear } = command.parameters;
      robot.localPin = clear === 'true' || !pin ? null : { pin, expiresAt: Number(expiresAt) || Number.MAX_SAFE_INTEGER };
    }
  }

  private unlock(robot: SimulatedRobot): void {
    const wasUnlocked = robot.unlocked;
    robot.unlocked = true;
    const script = this.opts.lidAfterUnlock;
    if (!script || wasUnlocked || robot.lidOpen) return;
    this.later(script.openAfterMs, () => this.moveLid(robot.serial, true));
    this.later(script.openAfterMs + script.closeAfterMs, async () => {
      robot.unlocked = false;
      await this.moveLid(robot.serial, false);
    });
  }

  private later(ms: number, fn: () => Promise<void>): void {
    const t = setTimeout(() => {
      this.lidTimers.delete(t);
      void fn().catch(() => undefined);
    }, ms);
    this.lidTimers.add(t);
  }

  private async ack(robot: SimulatedRobot, commandId: string, status: 'ACKNOWLEDGED' | 'EXECUTED' | 'FAILED', message?: string): Promise<void> {
    await this.client?.publishAsync(`robot/${robot.serial}/command/ack`, JSON.stringify({ commandId, status, ...(message ? { message } : {}) }), { qos: 1 });
  }

  /** Publishes one heartbeat for every robot that is not silent; resolves once the broker has them. */
  async publishAll(): Promise<void> {
    await Promise.all([...this.robots.values()].filter((r) => !r.silent).map((r) => this.publish(r)));
  }

  async publish(robot: SimulatedRobot): Promise<void> {
    if (!this.client) throw new Error('simulator not started');
    step(robot);
    robot.lastTimestamp = Math.max(Date.now(), robot.lastTimestamp + 1);
    const heartbeat = toHeartbeat(robot, robot.lastTimestamp);
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
    unlocked: false,
    localPin: null,
    commandReply: 'execute',
    commands: [],
    lastTimestamp: 0,
    lastPinAt: 0,
  };
}

function parseCommand(payload: Buffer): ReceivedCommand | null {
  try {
    const c = JSON.parse(payload.toString());
    if (typeof c.commandId !== 'string' || !(commandTypes as readonly string[]).includes(c.type)) return null;
    return { commandId: c.commandId, type: c.type, parameters: c.parameters ?? {}, issuedAt: Number(c.issuedAt), expiresAt: Number(c.expiresAt) };
  } catch {
    return null;
  }
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
