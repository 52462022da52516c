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

/** What the robot workflow is signalled with. */
export type DriveuReport = { uuid: string; unit: string; eventName: string; status: string; timeMicros: number };

export const streamerStatuses = ['OFFLINE', 'ONLINE', 'CONNECTED_TO_NODE', 'STREAMING'] as const;

export type DriveuState = {
  /** UPPER_SNAKE of DriveU's status (`connectedToNode` becomes CONNECTED_TO_NODE). */
  streamerStatus: string;
  pilotConnected: boolean;
  sessionId: string | null;
  sessionStartedAt: number | null;
  /** DriveU's clock of the newest report applied (microseconds); older ones change nothing. */
  timeMicros: number;
};

export const isStreamerReport = (r: Pick<DriveuReport, 'eventName' | 'unit'>) => r.eventName === 'status' && r.unit === 'streamer';

export function normaliseStreamerStatus(status: string): string {
  return status
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[\s-]+/g, '_')
    .toUpperCase();
}

/** Applies one report in DriveU time order; returns `current` itself when the report changes nothing. */
export function applyDriveuReport(current: DriveuState | null, report: DriveuReport): DriveuState | null {
  if (!isStreamerReport(report)) return current;
  if (current !== null && report.timeMicros <= current.timeMicros) return current;
  const streamerStatus = normaliseStreamerStatus(report.status);
  const pilotConnected = streamerStatus === 'CONNECTED_TO_NODE' || streamerStatus === 'STREAMING';
  const continuing = pilotConnected && current?.pilotConnected === true;
  return {
    streamerStatus,
    pilotConnected,
    sessionId: continuing ? current!.sessionId : pilotConnected ? `${report.uuid}-${report.timeMicros}` : null,
    sessionStartedAt: continuing ? current!.sessionStartedAt : pilotConnected ? Math.floor(report.timeMicros / 1000) : null,
    timeMicros: report.timeMicros,
  };
}
