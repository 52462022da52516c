import type { MqttClient } from 'mqtt';

/**
 * Holds QoS 1 PUBACKs until the messages they acknowledge are handled. mqtt.js sends a PUBACK as
 * soon as `handleMessage` calls back and reads one packet at a time, so acking only after a batch
 * is written would mean one message per batch. Instead we let it go on reading and keep the
 * PUBACKs here until the batch is done. PUBACKs of a dropped connection are discarded: the broker
 * sends those messages again on the persistent session, and handling them twice is harmless.
 */
export type AckGate = {
  /** PUBACKs held so far; call the result once the messages they belong to are handled. */
  take(): () => void;
  held(): number;
};

type Packet = { cmd: string };
type SendPacket = (packet: Packet, cb?: () => void, cbStorePut?: () => void) => void;

export function installAckGate(client: MqttClient): AckGate {
  const internals = client as unknown as { _sendPacket: SendPacket };
  const send = internals._sendPacket.bind(client);
  let connection = 0;
  let held: { connection: number; send: () => void }[] = [];
  client.on('connect', () => {
    connection += 1;
    held = [];
  });
  internals._sendPacket = (packet, cb, cbStorePut) => {
    if (packet.cmd !== 'puback') return send(packet, cb, cbStorePut);
    held.push({ connection, send: () => send(packet, undefined, cbStorePut) });
    cb?.();
  };
  return {
    take() {
      const batch = held;
      held = [];
      return () => {
        for (const ack of batch) if (ack.connection === connection && client.connected) ack.send();
      };
    },
    held: () => held.length,
  };
}
