import { z } from 'zod';
import { fieldPath } from './field-path';

/** The robot's MQTT heartbeat on `robot/<serial>/status`, as CONTRACT.md shows it (snake_case). */

export const componentCodes = ['OK', 'READY', 'TIMEOUT', 'NON_CRITICAL_FAULT', 'CRITICAL_FAULT'] as const;
export const componentCode = z.enum(componentCodes);
export type ComponentCode = z.infer<typeof componentCode>;

export const serialSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'serial may hold only letters, digits, "_" and "-"');

const finite = z.number().finite();

const gpsSchema = z.object({
  lat: finite.min(-90).max(90),
  lng: finite.min(-180).max(180),
  heading: finite.min(0).max(360).optional(),
  horizontal_accuracy: finite.min(0).optional(),
  altitude: finite.optional(),
  speed_mph: finite.min(0).max(100).optional(),
});

const batterySchema = z.object({
  index: z.number().int().min(0).max(15),
  charge_percent: finite.min(0).max(100),
  is_charging: z.boolean().optional(),
  voltage: finite.optional(),
  current: finite.optional(),
  temperature: finite.optional(),
});

const componentName = z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'component names are UPPER_SNAKE_CASE');

export const robotEventSchema = z
  .object({
    type: z.string().regex(/^[A-Z][A-Z_]{0,39}$/, 'event type is UPPER_SNAKE_CASE'),
    timestamp: z.number().int().positive(),
    pin: z.string().regex(/^\d{2,10}$/, 'pin is 2 to 10 digits').optional(),
  })
  .refine((e) => e.type !== 'PIN_ENTRY' || e.pin !== undefined, { message: 'PIN_ENTRY needs a pin', path: ['pin'] });

export const rawHeartbeatSchema = z.object({
  serial: serialSchema,
  timestamp: z.number().int().positive().max(8_640_000_000_000_000),
  gps: gpsSchema.optional(),
  // A repeated index would make the projection's one-statement battery upsert fail, and the batch with it.
  batteries: z
    .array(batterySchema)
    .max(16)
    .superRefine((batteries, ctx) => {
      const seen = new Set<number>();
      batteries.forEach((b, i) => {
        if (seen.has(b.index)) ctx.addIssue({ code: 'custom', message: `battery index ${b.index} repeated`, path: [i, 'index'] });
        seen.add(b.index);
      });
    })
    .default([]),
  components: z
    .record(componentName, componentCode)
    .refine((c) => Object.keys(c).length <= 64, 'at most 64 components')
    .default({}),
  lid: z.object({ is_open: z.boolean() }).optional(),
  network: z
    .object({
      type: z.enum(['WIFI', 'CELLULAR', 'ETHERNET']),
      signal_strength: z.number().int().min(-200).max(100).optional(),
    })
    .optional(),
  events: z.array(robotEventSchema).max(50).optional(),
});
export type RawHeartbeat = z.input<typeof rawHeartbeatSchema>;

/** A validated heartbeat in our own names: what the ingest worker hands on. */
export const heartbeatSchema = z.object({
  serial: serialSchema,
  /** On the robot's clock line (domain/robot-clock.ts): the robot's own timestamp while its clock is right. */
  timestamp: z.number().int(),
  /** The robot's own timestamp, when `timestamp` had to differ from it. */
  robotTimestamp: z.number().int().optional(),
  /** Server time the message was received: what liveness follows. */
  receivedAt: z.number().int(),
  location: z
    .object({
      latitude: z.number(),
      longitude: z.number(),
      heading: z.number().optional(),
      horizontalAccuracy: z.number().optional(),
      altitude: z.number().optional(),
      speedMph: z.number().optional(),
    })
    .optional(),
  batteries: z.array(
    z.object({
      batteryIndex: z.number().int(),
      chargePercent: z.number().int(),
      isCharging: z.boolean().optional(),
      voltage: z.number().optional(),
      current: z.number().optional(),
      temperature: z.number().optional(),
    }),
  ),
  components: z.record(z.string(), componentCode),
  lidOpen: z.boolean().optional(),
  network: z.object({ type: z.enum(['WIFI', 'CELLULAR', 'ETHERNET']), signalStrength: z.number().int().optional() }).optional(),
  // The ingest worker replaces `pin` with `pinHash` (domain/lid-pins.ts) before a heartbeat goes further.
  events: z.array(z.object({ type: z.string(), timestamp: z.number().int(), pin: z.string().optional(), pinHash: z.string().optional() })),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

export const MAX_HEARTBEAT_BYTES = 64 * 1024;

/**
 * A part of a heartbeat that failed validation and was left out, the rest applied: `field` names
 * what was dropped (`gps.heading`, `batteries.1`, `components.GPS`), `reason` why.
 */
export type DroppedPart = { field: string; reason: string; /** The field without indexes or robot-chosen keys, for counting: `gps.heading`, `batteries`. */ kind: string };

export type ParseResult = { ok: true; heartbeat: Heartbeat; dropped: DroppedPart[] } | { ok: false; reason: string };

/** Optional fields inside an optional part: dropped alone, the rest of the part kept. */
const optionalInside: Record<string, readonly string[]> = {
  gps: ['heading', 'horizontal_accuracy', 'altitude', 'speed_mph'],
  network: ['signal_strength'],
};

/** Rounds of dropping before a message counts as too broken to apply (each round drops every part zod named). */
const MAX_DROP_ROUNDS = 8;

/**
 * Parses one MQTT message from `robot/<serial>/status`; never throws. A message that is not JSON,
 * is too large, has no valid `serial` and `timestamp` or names another robot than its topic is
 * rejected whole. Any other part that fails validation (a heading of 361, a fractional signal
 * strength, an unknown component code) is dropped and named in `dropped`, the rest applied: a
 * sensor glitch must not make a publishing robot look silent.
 */
export function parseHeartbeat(topic: string, payload: Buffer | string, receivedAt: number): ParseResult {
  const topicSerial = serialFromStatusTopic(topic);
  // A topic may be 64 KiB long: the reason quotes only its start, as the stored row does.
  if (topicSerial === undefined) return { ok: false, reason: `topic: "${topic.slice(0, 200)}${topic.length > 200 ? '…' : ''}" is not robot/<serial>/status` };
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > MAX_HEARTBEAT_BYTES) return { ok: false, reason: `payload: ${size} bytes is over the ${MAX_HEARTBEAT_BYTES}-byte limit` };
  let json: unknown;
  try {
    json = JSON.parse(payload.toString());
  } catch {
    return { ok: false, reason: 'payload: not valid JSON' };
  }
  return parseHeartbeatJson(topicSerial, json, receivedAt);
}

/**
 * One SQS message as an AWS IoT Rule sends it (`SELECT *, topic() AS topic FROM 'robot/+/status'`):
 * the heartbeat with a `topic` field added, whose serial must be the heartbeat's. The same rules as
 * an MQTT message; the topic is returned for the rejected-message row.
 */
export function parseRuleMessage(body: string, receivedAt: number): ParseResult & { topic: string } {
  const size = Buffer.byteLength(body);
  if (size > MAX_HEARTBEAT_BYTES) return { ok: false, reason: `payload: ${size} bytes is over the ${MAX_HEARTBEAT_BYTES}-byte limit`, topic: 'sqs' };
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'payload: not valid JSON', topic: 'sqs' };
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return { ok: false, reason: '(root): not a JSON object', topic: 'sqs' };
  const { topic, ...heartbeat } = json as Record<string, unknown>;
  if (typeof topic !== 'string') return { ok: false, reason: 'topic: missing; the IoT Rule adds topic() AS topic', topic: 'sqs' };
  const topicSerial = serialFromStatusTopic(topic);
  if (topicSerial === undefined) return { ok: false, reason: `topic: "${topic.slice(0, 200)}${topic.length > 200 ? '…' : ''}" is not robot/<serial>/status`, topic };
  return { ...parseHeartbeatJson(topicSerial, heartbeat, receivedAt), topic };
}

function parseHeartbeatJson(topicSerial: string, json: unknown, receivedAt: number): ParseResult {
  const dropped: DroppedPart[] = [];
  for (let round = 0; ; round++) {
    const parsed = rawHeartbeatSchema.safeParse(json);
    if (parsed.success) {
      if (parsed.data.serial !== topicSerial) {
        return { ok: false, reason: `serial: "${parsed.data.serial}" does not match topic serial "${topicSerial}"` };
      }
      return { ok: true, heartbeat: normalizeHeartbeat(parsed.data, receivedAt), dropped };
    }
    const parts = parsed.error.issues.map((issue) => ({ issue, part: droppablePart(issue.path) }));
    const whole = parts.find((p) => p.part === null);
    if (whole || round === MAX_DROP_ROUNDS) return { ok: false, reason: describeZodError(whole ? new z.ZodError([whole.issue]) : parsed.error) };
    for (const { issue, part } of parts) {
      if (dropped.some((d) => d.field === fieldPath(part!))) continue;
      const [top, inside] = part!;
      const kind = String(top) in optionalInside && inside !== undefined ? `${String(top)}.${String(inside)}` : String(top);
      dropped.push({ field: fieldPath(part!), reason: `${fieldPath(issue.path)}: ${issue.message}`, kind });
    }
    json = withoutParts(json as Record<string, unknown>, parts.map((p) => p.part!));
  }
}

/** The smallest part to drop for an issue at `path`; null when the whole message must go. */
function droppablePart(path: readonly PropertyKey[]): PropertyKey[] | null {
  const [top, inside] = path;
  if (path.length === 0 || top === 'serial' || top === 'timestamp') return null;
  if (typeof top !== 'string') return null;
  if (top in optionalInside) return optionalInside[top].includes(String(inside)) ? [top, inside] : [top];
  if ((top === 'batteries' || top === 'events') && typeof inside === 'number') return [top, inside];
  if (top === 'components' && inside !== undefined) return [top, inside];
  return [top];
}

/** A copy of the message without the given parts (array elements removed, keys deleted). */
function withoutParts(json: Record<string, unknown>, parts: PropertyKey[][]): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...json };
  const gone = new Map<string, Set<PropertyKey>>();
  for (const [top, inside] of parts) {
    const key = String(top);
    if (inside === undefined) {
      delete copy[key];
      gone.delete(key);
    } else if (key in copy) {
      gone.set(key, (gone.get(key) ?? new Set()).add(inside));
    }
  }
  for (const [key, inside] of gone) {
    const value = copy[key];
    if (Array.isArray(value)) copy[key] = value.filter((_, i) => !inside.has(i));
    else if (value !== null && typeof value === 'object') {
      const kept = Object.entries(value).filter(([k]) => !inside.has(k));
      copy[key] = Object.fromEntries(kept);
    }
  }
  return copy;
}

export function serialFromStatusTopic(topic: string): string | undefined {
  const m = /^robot\/([^/]+)\/status$/.exec(topic);
  return m && serialSchema.safeParse(m[1]).success ? m[1] : undefined;
}

export function normalizeHeartbeat(raw: z.output<typeof rawHeartbeatSchema>, receivedAt: number): Heartbeat {
  return {
    serial: raw.serial,
    timestamp: raw.timestamp,
    receivedAt,
    location: raw.gps && {
      latitude: raw.gps.lat,
      longitude: raw.gps.lng,
      heading: raw.gps.heading,
      horizontalAccuracy: raw.gps.horizontal_accuracy,
      altitude: raw.gps.altitude,
      speedMph: raw.gps.speed_mph,
    },
    batteries: raw.batteries.map((b) => ({
      batteryIndex: b.index,
      chargePercent: Math.round(b.charge_percent),
      isCharging: b.is_charging,
      voltage: b.voltage,
      current: b.current,
      temperature: b.temperature,
    })),
    components: { ...raw.components },
    lidOpen: raw.lid?.is_open,
    network: raw.network && { type: raw.network.type, signalStrength: raw.network.signal_strength },
    events: (raw.events ?? []).map((e) => ({ type: e.type, timestamp: e.timestamp, pin: e.pin })),
  };
}

/** One line naming the first offending field, e.g. `gps.lat: Too big: expected number to be <=90`. */
export function describeZodError(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${fieldPath(issue.path)}: ${issue.message}`;
}
