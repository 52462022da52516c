import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';

/** TLS with a client certificate (mqtts://, as AWS IoT Core requires), from MQTT_CA_FILE, MQTT_CERT_FILE, MQTT_KEY_FILE. */
export function mqttConnectOptions(config: { MQTT_CA_FILE?: string; MQTT_CERT_FILE?: string; MQTT_KEY_FILE?: string }): IClientOptions {
  return {
    ...(config.MQTT_CA_FILE ? { ca: readFileSync(config.MQTT_CA_FILE) } : {}),
    ...(config.MQTT_CERT_FILE ? { cert: readFileSync(config.MQTT_CERT_FILE) } : {}),
    ...(config.MQTT_KEY_FILE ? { key: readFileSync(config.MQTT_KEY_FILE) } : {}),
  };
}
