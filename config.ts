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
  TEMPORAL_UI_PORT: z.coerce.number().int().default(8233),
  DATABASE_URL: z.string().optional(),
  EMBEDDED_POSTGRES_PORT: z.coerce.number().int().default(5432),
  MQTT_URL: z.string().optional(),
  MQTT_PORT: z.coerce.number().int().default(1883),
  PORT: z.coerce.number().int().default(3000),
  OFFLINE_AFTER_SECONDS: seconds(60),
  HEARTBEAT_FORWARD_INTERVAL_SECONDS: z.coerce.number().positive().optional(),
  LID_OPEN_TIMEOUT_SECONDS: seconds(300),
  SIM_ROBOTS: z.coerce.number().int().min(0).default(5),
  API_KEYS: z.string().optional(),
  DATA_DIR: z.string().default('.data'),
  LOG_LEVEL: z.string().default('info'),
});
export type Config = z.infer<typeof configSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`configuration: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

/** Heartbeats reach the workflow at least this often while a robot is online (see domain/forwarding.ts). */
export function forwardIntervalMs(config: Config): number {
  const seconds = config.HEARTBEAT_FORWARD_INTERVAL_SECONDS ?? Math.min(30, config.OFFLINE_AFTER_SECONDS / 2);
  return seconds * 1000;
}
