import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { findMosquitto, startMosquitto, type RunningMosquitto } from '../infra/mosquitto';
import { makeTestPki, type TestPki } from './support/certs';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { heartbeat } from './support/robot';
import { freePort } from '../infra/ports';

/**
 * The ingest on Mosquitto, the broker tested for production-like MQTT (infra/mosquitto.ts): TLS
 * with client certificates, as AWS IoT Core requires (mqtts://, MQTT_CA_FILE, MQTT_CERT_FILE,
 * MQTT_KEY_FILE), several connections in a shared-subscription group, and a robot speaking MQTT 5
 * (which the embedded aedes refuses). Skipped when Mosquitto is not installed (scripts/mosquitto.sh).
 */

const withMosquitto = findMosquitto() ? describe : describe.skip;
if (!findMosquitto()) console.warn('test/mqtt-scale.test.ts: Mosquitto is not installed (scripts/mosquitto.sh), so these tests are skipped.');

withMosquitto('MQTT at scale on Mosquitto', () => {
  const dir = resolve(__dirname, '..', '.data', `mqtt-scale-${process.pid}`);
  let pki: TestPki;
  let broker: RunningMosquitto;
  let fleet: TestFleet;
  let worker: MqttClient;

  beforeAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    pki = makeTestPki(join(dir, 'pki'), ['ingest', 'robot', 'worker']);
    broker = await startMosquitto({ port: await freePort(), dir, tls: { ca: pki.ca, cert: pki.file('server', 'crt'), key: pki.file('server', 'key') } });
    const tls = (name: string) => ({ ca: readFileSync(pki.ca), cert: readFileSync(pki.file(name, 'crt')), key: readFileSync(pki.file(name, 'key')) });
    worker = await mqtt.connectAsync(broker.url, { ...tls('worker'), reconnectPeriod: 1000 });
    fleet = await startFleet(
      {
        MQTT_CA_FILE: pki.ca,
        MQTT_CERT_FILE: pki.file('ingest', 'crt'),
        MQTT_KEY_FILE: pki.file('ingest', 'key'),
        MQTT_SHARE_GROUP: 'scale-test',
        MQTT_CONNECTIONS: '3',
        MQTT_MAX_UNACKED: '20',
      },
      { mqtt: worker },
      { mqttUrl: broker.url },
    );
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
    await worker?.endAsync();
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const robotTls = () => ({ ca: readFileSync(pki.ca), cert: readFileSync(pki.file('robot', 'crt')), key: readFileSync(pki.file('robot', 'key')) });

  test('a robot with a client certificate over mqtts, on three connections of a shared group, lands once per heartbeat', async () => {
    const robot = await mqtt.connectAsync(broker.url, { ...robotTls(), reconnectPeriod: 0 });
    try {
      const serials = Array.from({ length: 10 }, () => uniqueSerial('TLS'));
      const start = Date.now();
      for (let i = 0; i < 10; i++) {
        for (const serial of serials) await robot.publishAsync(`robot/${serial}/status`, JSON.stringify(heartbeat(serial, { timestamp: start + i, gps: { lat: i, lng: 1 } })), { qos: 1 });
      }
      await eventually(async () => {
        const rows = await fleet.prisma.device.findMany({ where: { serialNumber: { in: serials } } });
        expect(rows.map((r) => r.lat)).toEqual(serials.map(() => 9));
      });
      // Each heartbeat went to one member: the robots' workflows saw each robot online once.
      for (const serial of serials) await eventually(async () => expect((await fleet.api(`/v1/events?serial=${serial}&type=Device.ConnectivityChanged`)).body.events).toHaveLength(1));
    } finally {
      await robot.endAsync();
    }
  });

  test('a backlog of 300 heartbeats, 15 times MQTT_MAX_UNACKED, waiting at the broker is taken in full after a restart', async () => {
    const robot = await mqtt.connectAsync(broker.url, { ...robotTls(), reconnectPeriod: 0 });
    try {
      const serials = Array.from({ length: 30 }, () => uniqueSerial('BL'));
      const start = Date.now();
      await fleet.restartIngest(async () => {
        for (let i = 0; i < 10; i++) {
          for (const serial of serials) await robot.publishAsync(`robot/${serial}/status`, JSON.stringify(heartbeat(serial, { timestamp: start + i, gps: { lat: i, lng: 0 } })), { qos: 1 });
        }
      });
      await eventually(async () => {
        const rows = await fleet.prisma.device.findMany({ where: { serialNumber: { in: serials } }, select: { lat: true } });
        expect(rows.map((r) => r.lat)).toEqual(serials.map(() => 9));
      });
    } finally {
      await robot.endAsync();
    }
  });

  test('the broker refuses a client without a certificate, or with one from another CA', async () => {
    const refused = (options: mqtt.IClientOptions) =>
      mqtt.connectAsync(broker.url, { ca: readFileSync(pki.ca), reconnectPeriod: 0, connectTimeout: 5000, ...options }).then(
        async (c) => (await c.endAsync(), false),
        () => true,
      );
    expect(await refused({})).toBe(true);
    expect(await refused({ cert: readFileSync(pki.file('rogue', 'crt')), key: readFileSync(pki.file('rogue', 'key')) })).toBe(true);
  });

  test('a robot speaking MQTT 5 is ingested like any other', async () => {
    const robot = await mqtt.connectAsync(broker.url, { ...robotTls(), protocolVersion: 5, reconnectPeriod: 0 });
    try {
      const serial = uniqueSerial('V5');
      await robot.publishAsync(`robot/${serial}/status`, JSON.stringify(heartbeat(serial)), { qos: 1, properties: { contentType: 'application/json', userProperties: { firmware: '5.1' } } });
      await eventually(async () => expect((await fleet.api(`/v1/devices/${serial}`)).status).toBe(200));
    } finally {
      await robot.endAsync();
    }
  });
});
