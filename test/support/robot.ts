import mqtt, { type MqttClient } from 'mqtt';
import { normalizeHeartbeat, rawHeartbeatSchema, type Heartbeat, type RawHeartbeat } from '../../domain/heartbeat';
import { required } from './fleet';

/** A robot's MQTT connection for tests that publish exact heartbeats. */
export async function connectRobot(): Promise<MqttClient> {
  return mqtt.connectAsync(required('MQTT_URL'), { reconnectPeriod: 0 });
}

export async function publish(client: MqttClient, topic: string, payload: string | object): Promise<void> {
  await client.publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1 });
}

export function heartbeat(serial: string, overrides: Partial<RawHeartbeat> = {}): RawHeartbeat {
  return {
    serial,
    timestamp: Date.now(),
    gps: { lat: 37.7749, lng: -122.4194, heading: 45.2, horizontal_accuracy: 3.5, altitude: 10.2, speed_mph: 5.3 },
    batteries: [{ index: 0, charge_percent: 87, is_charging: false, voltage: 48.2, current: -5.3, temperature: 32.5 }],
    components: { GPS: 'OK', CAMERAS: 'OK', LTE_ROUTERS: 'OK' },
    lid: { is_open: false },
    network: { type: 'CELLULAR', signal_strength: -85 },
    ...overrides,
  };
}

/** A heartbeat as the ingest worker hands it to `writeHeartbeats`: validated, normalised, received at its own timestamp. */
export function ingestedHeartbeat(serial: string, overrides: Partial<RawHeartbeat> = {}): Heartbeat {
  const raw = rawHeartbeatSchema.parse(heartbeat(serial, overrides));
  return normalizeHeartbeat(raw, raw.timestamp);
}
