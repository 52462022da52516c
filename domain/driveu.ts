import { z } from 'zod';

/**
 * DriveU teleoperation status (seed 000 "DriveU Webhook Schema", IWebhookEvent). The streamer on a
 * robot reports `online`, `offline`, `connectedToNode`, `streaming`; a pilot is connected while it
 * is connected to a node (a pilot's station) or streaming. `time` is in microseconds.
 */

// 2001-09-09 in microseconds: a `time` below this was almost certainly sent in milliseconds.
const MIN_TIME_MICROS = 1e15;

export const driveuWebhookEventSchema = z.object({
  eventName: z.string().min(1).max(50).describe("'status' is the one applied; others are kept for inspection"),
  unit: z.string().min(1).max(20).describe("'streamer', 'node' or 'relay'; only the robot's streamer changes its status"),
  status: z.string().min(1).max(50).describe("e.g. 'online', 'offline', 'connectedToNode', 'streaming'"),
  uuid: z.string().min(1).max(100),
  vin: z.string().max(100).nullable().optional(),
  time: z.number().int().min(MIN_TIME_MICROS, 'time is in microseconds since the epoch').max(Number.MAX_SAFE_INTEGER),
});
export type DriveuWebhookEvent = z.infer<typeof driveuWebhookEventSchema>;

export { applyDriveuReport, isStreamerReport, normaliseStreamerStatus, streamerStatuses, type DriveuReport, type DriveuState } from './driveu-state';
