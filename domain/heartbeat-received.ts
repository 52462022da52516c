import { createHash } from 'node:crypto';
import type { Device } from './device';
import type { UpdatedField } from './device-parts';
import type { Heartbeat } from './heartbeat';

/**
 * `Device.HeartbeatReceived` (seed 001, the anti-corruption layer): the clean snapshot published for
 * every heartbeat stored as its robot's newest, so no other service reads raw MQTT. Its id is
 * derived from the robot and the heartbeat's time on its clock line (domain/robot-clock.ts), which
 * only moves forward: a heartbeat delivered twice carries one id, and a robot whose clock is reset
 * (to 1970 at every boot) never repeats one. The heartbeat that starts a new clock epoch is placed
 * at its receipt time, so that one, redelivered after a crash before its batch committed, may come
 * with a second id.
 */
export const HEARTBEAT_RECEIVED = 'Device.HeartbeatReceived';

export type HeartbeatReceived = {
  id: string;
  type: typeof HEARTBEAT_RECEIVED;
  serial: string;
  occurredAt: string;
  data: { device: Device; updatedFields: UpdatedField[] };
};

export function heartbeatReceived(hb: Heartbeat, device: Device, updatedFields: UpdatedField[]): HeartbeatReceived {
  return {
    id: heartbeatEventId(hb.serial, hb.timestamp),
    type: HEARTBEAT_RECEIVED,
    serial: hb.serial,
    occurredAt: new Date(hb.timestamp).toISOString(),
    data: { device, updatedFields },
  };
}

/** A name-based UUID (version 5 layout, SHA-1) of the robot and the heartbeat's time on its clock line. */
export function heartbeatEventId(serial: string, lineTime: number): string {
  const hash = createHash('sha1').update(`${HEARTBEAT_RECEIVED}:${serial}:${lineTime}`).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
