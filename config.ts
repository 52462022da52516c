import type { ForwardRule } from './domain/forwarding';
import type { IntakeRules } from './domain/heartbeat-intake';
import { z } from 'zod';

/** Environment configuration (CONTRACT.md "Configuration"); every variable is optional. */

const seconds = (fallback: number) => z.coerce.number().positive().default(fallback);

export const configSchema = z.object({
  TEMPORAL_ADDRESS: z.string().optional(),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_API_KEY: z.string().optional(),
  TEMPORAL_TLS_CERT: z.string().optional(),
  TEMPORAL_TLS_KEY: z.string().optional(),
  TEMPORAL_CLI_PATH: z.string().optional(),
  /** With no TEMPORAL_ADDRESS: the CLI's dev server on SQLite, or a Temporal server on the project's PostgreSQL (infra/temporal-postgres.ts). */
  TEMPORAL_SERVER: z.enum(['dev', 'postgres']).default('dev'),
  /** How long a worker, ingest worker or API started alone waits for Temporal to answer before it exits. */
  TEMPORAL_CONNECT_WAIT_SECONDS: seconds(120),
  TEMPORAL_PORT: z.coerce.number().int().default(7233),
  TEMPORAL_UI_PORT: z.coerce.number().int().default(8233),
  DATABASE_URL: z.string().optional(),
  EMBEDDED_POSTGRES_PORT: z.coerce.number().int().default(5432),
  MQTT_URL: z.string().optional(),
  MQTT_PORT: z.coerce.number().int().default(1883),
  /** Where heartbeats come from: the MQTT broker, or the SQS queue an AWS IoT Rule fills. */
  INGEST_SOURCE: z.enum(['mqtt', 'sqs']).default('mqtt'),
  /** Members of this shared-subscription group split the robots' messages ($share/<group>/...). */
  MQTT_SHARE_GROUP: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _ only').optional(),
  /** The ingest process's MQTT client id (its connections add -2, -3...): unique per process and stable, so its persistent session resumes. */
  MQTT_CLIENT_ID: z.string().min(1).max(100).default('fleet-ingest'),
  /** MQTT connections per ingest process, each its own client id and persistent session. */
  MQTT_CONNECTIONS: z.coerce.number().int().min(1).max(64).default(1),
  /** Most messages one connection holds unacknowledged (AWS IoT Core allows 100). */
  MQTT_MAX_UNACKED: z.coerce.number().int().min(1).default(100),
  MQTT_CA_FILE: z.string().optional(),
  MQTT_CERT_FILE: z.string().optional(),
  MQTT_KEY_FILE: z.string().optional(),
  /** The queue an AWS IoT Rule fills; with INGEST_SOURCE=sqs and none, npm start runs a local one. */
  SQS_HEARTBEAT_QUEUE_URL: z.url().optional(),
  /** Another SQS-compatible endpoint than AWS's. */
  SQS_ENDPOINT: z.url().optional(),
  /** Concurrent long-polling receivers per ingest process (10 messages each). */
  SQS_RECEIVERS: z.coerce.number().int().min(1).max(64).default(4),
  SQS_LOCAL_PORT: z.coerce.number().int().default(9324),
  PORT: z.coerce.number().int().default(3000),
  OFFLINE_AFTER_SECONDS: seconds(60),
  HEARTBEAT_FORWARD_INTERVAL_SECONDS: z.coerce.number().positive().optional(),
  /** How often the ingest worker looks for robots gone silent (ingest/silence-sweeper.ts): offline is detected within OFFLINE_AFTER_SECONDS plus this. */
  SILENCE_SWEEP_SECONDS: seconds(2),
  /** How far a robot's clock may be off and still be taken as it is (domain/robot-clock.ts). */
  CLOCK_SKEW_TOLERANCE_SECONDS: seconds(30),
  /** Older-dated heartbeats arriving this long with none newer: the robot's clock was set back. */
  CLOCK_RESET_AFTER_SECONDS: seconds(10),
  /** The ingest worker run on its own (workers/ingest.ts) serves /metrics here; unset: none. */
  INGEST_METRICS_PORT: z.coerce.number().int().optional(),
  /** Messages the ingest worker holds unacknowledged at most; past it, it stops reading and the broker keeps the rest. */
  INGEST_MAX_PENDING: z.coerce.number().int().min(1).default(10_000),
  /** Rejected robot messages (and heartbeats applied without a part) are kept this long, then deleted by the ingest worker. */
  REJECTED_MESSAGES_KEEP_DAYS: z.coerce.number().positive().default(14),
  /** Workflows the robot worker keeps in memory (docs/performance.md, "Cache sizes"): at least the robots it serves, or it replays histories. */
  WORKFLOW_CACHE_SIZE: z.coerce.number().int().min(1).default(2000),
  LID_OPEN_TIMEOUT_SECONDS: seconds(300),
  /** Lid Service (docs/lid-cycles-and-commands.md). */
  LID_PIN_FLOW: z.enum(['deviceless', 'magic-lid']).default('deviceless'),
  PIN_HASH_SECRET: z.string().min(16).optional(),
  PIN_LOCKOUT_ATTEMPTS: z.coerce.number().int().min(1).default(5),
  PIN_LOCKOUT_WINDOW_SECONDS: seconds(300),
  PIN_LOCKOUT_SECONDS: seconds(300),
  LID_UNLOCK_GRACE_SECONDS: seconds(120),
  COMMAND_TIMEOUT_SECONDS: seconds(30),
  /** A fleet view row whose device data is older than this is flagged `potentiallyStale`. */
  FLEET_STALE_AFTER_SECONDS: seconds(30),
  PARTNER_PUSH_INTERVAL_SECONDS: seconds(30),
  /** Without it, the API makes a development secret (npm start prints it). */
  DRIVEU_WEBHOOK_SECRET: z.string().min(1).optional(),
  /** Without it, npm start runs infra/doordash-local.ts and fills in the credentials below. */
  DOORDASH_BASE_URL: z.url().optional(),
  DOORDASH_DEVELOPER_ID: z.string().min(1).optional(),
  DOORDASH_KEY_ID: z.string().min(1).optional(),
  DOORDASH_SIGNING_SECRET: z.string().min(1).optional(),
  /** Greengrass V2 (docs/rollouts.md): without an endpoint or AWS credentials, npm start runs infra/greengrass-local.ts. */
  GREENGRASS_ENDPOINT: z.url().optional(),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  GREENGRASS_LOCAL_PORT: z.coerce.number().int().default(4510),
  GREENGRASS_POLL_DEVICES_PER_SECOND: z.coerce.number().positive().default(5),
  GREENGRASS_POLL_MIN_INTERVAL_SECONDS: seconds(60),
  /** RabbitMQ to publish domain events to (docs/events.md); unset: events stay in PostgreSQL and the API. */
  AMQP_URL: z.string().regex(/^amqps?:\/\//, 'must be an amqp:// or amqps:// URL').optional(),
  /** The environment prefix of exchange names, as seed 002's `prefixWithEnv`: `<EVENTS_ENV>.devices/device-event`. */
  EVENTS_ENV: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _ only').default('local'),
  /** A comment on an idle GET /v1/events/stream this often, so proxies keep it open. */
  EVENTS_STREAM_HEARTBEAT_SECONDS: seconds(15),
  SIM_ROBOTS: z.coerce.number().int().min(0).default(5),
  API_KEYS: z.string().optional(),
  /** Token buckets (api/rate-limit.ts): per API key, and per client IP for requests without a valid key; a rate of 0 is no limit. */
  API_RATE_LIMIT_PER_SECOND: z.coerce.number().min(0).default(100),
  API_RATE_BURST: z.coerce.number().int().min(1).default(500),
  /** The same for keys with partner scopes only (GET /v1/partners/...): partners are outside callers, polling vehicles. */
  PARTNER_RATE_LIMIT_PER_SECOND: z.coerce.number().min(0).default(10),
  PARTNER_RATE_BURST: z.coerce.number().int().min(1).default(50),
  IP_RATE_LIMIT_PER_SECOND: z.coerce.number().min(0).default(50),
  IP_RATE_BURST: z.coerce.number().int().min(1).default(200),
  /** PIN checks through the API per robot (POST .../unlock-pin/validate), before the lockout's database lock. */
  PIN_CHECK_RATE_PER_SECOND: z.coerce.number().min(0).default(2),
  PIN_CHECK_BURST: z.coerce.number().int().min(1).default(10),
  /** Proxies in front of the API whose X-Forwarded-For is believed (Express "trust proxy" hops); 0: the socket's address. */
  TRUST_PROXY_HOPS: z.coerce.number().int().min(0).default(0),
  DATA_DIR: z.string().default('.data'),
  LOG_LEVEL: z.string().default('info'),
});
export type Config = z.infer<typeof configSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema
    // Several connections without a group would each receive every message.
    .refine((c) => c.MQTT_CONNECTIONS === 1 || c.MQTT_SHARE_GROUP !== undefined, { message: 'more than one connection needs MQTT_SHARE_GROUP', path: ['MQTT_CONNECTIONS'] })
    .safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`configuration: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

/** How the ingest takes heartbeats in (domain/heartbeat-intake.ts). */
export function heartbeatRules(config: Config): IntakeRules {
  return {
    clock: { toleranceMs: config.CLOCK_SKEW_TOLERANCE_SECONDS * 1000, resetAfterMs: config.CLOCK_RESET_AFTER_SECONDS * 1000 },
    forward: forwardRule(config),
  };
}

/** Which heartbeats reach the robot workflow besides changes (see domain/forwarding.ts). */
export function forwardRule(config: Config): ForwardRule {
  return {
    intervalMs: (config.HEARTBEAT_FORWARD_INTERVAL_SECONDS ?? 300) * 1000,
    // Shorter than any silence the workflow could have marked offline, so a returning robot is seen at once.
    silenceMs: (config.OFFLINE_AFTER_SECONDS * 1000) / 2,
  };
}
