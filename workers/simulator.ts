import { loadConfig } from '../config';
import { RobotSimulator, simulatedSerials } from '../simulator/robot-simulator';

/** `npm run simulate`: SIM_ROBOTS simulated robots publishing to MQTT_URL (or the local broker). */
async function main(): Promise<void> {
  const config = loadConfig();
  const mqttUrl = config.MQTT_URL ?? `mqtt://127.0.0.1:${config.MQTT_PORT}`;
  const simulator = new RobotSimulator({ mqttUrl, serials: simulatedSerials(config.SIM_ROBOTS) });
  await simulator.start();
  console.log(`simulating ${config.SIM_ROBOTS} robots on ${mqttUrl}`);
  const shutdown = () => void simulator.stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
