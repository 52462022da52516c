/** DriveU streamer state as the robot workflow keeps it (zod-free for the workflow bundle; the webhook's schema is in driveu.ts). */

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
