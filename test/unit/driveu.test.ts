import { applyDriveuReport, driveuWebhookEventSchema, normaliseStreamerStatus, type DriveuReport } from '../../domain/driveu';
import { driveuSignature } from '../../api/driveu';

const report = (status: string, timeMicros: number, unit = 'streamer'): DriveuReport => ({ uuid: 'u1', unit, eventName: 'status', status, timeMicros });
const T = 1_767_000_000_000_000;

describe('DriveU status', () => {
  it('normalises DriveU statuses to the seed enum names', () => {
    expect(normaliseStreamerStatus('connectedToNode')).toBe('CONNECTED_TO_NODE');
    expect(normaliseStreamerStatus('online')).toBe('ONLINE');
  });

  it('a streamer connected to a node or streaming has a pilot; the session lasts until it leaves', () => {
    const online = applyDriveuReport(null, report('online', T))!;
    expect(online).toMatchObject({ streamerStatus: 'ONLINE', pilotConnected: false, sessionId: null });
    const connected = applyDriveuReport(online, report('connectedToNode', T + 1_000_000))!;
    expect(connected).toMatchObject({ pilotConnected: true, sessionStartedAt: Math.floor((T + 1_000_000) / 1000) });
    const streaming = applyDriveuReport(connected, report('streaming', T + 2_000_000))!;
    expect(streaming).toMatchObject({ streamerStatus: 'STREAMING', sessionId: connected.sessionId, sessionStartedAt: connected.sessionStartedAt });
    expect(applyDriveuReport(streaming, report('online', T + 3_000_000))).toMatchObject({ pilotConnected: false, sessionId: null });
  });

  it('ignores older reports and other units', () => {
    const connected = applyDriveuReport(null, report('connectedToNode', T))!;
    expect(applyDriveuReport(connected, report('offline', T - 1))).toBe(connected);
    expect(applyDriveuReport(connected, report('offline', T + 5, 'relay'))).toBe(connected);
  });

  it('takes time in microseconds and signs the raw body', () => {
    expect(driveuWebhookEventSchema.safeParse({ eventName: 'status', unit: 'streamer', status: 'online', uuid: 'u', vin: null, time: Date.now() }).success).toBe(false);
    expect(driveuWebhookEventSchema.safeParse({ eventName: 'status', unit: 'streamer', status: 'online', uuid: 'u', vin: null, time: Date.now() * 1000 }).success).toBe(true);
    // echo -n '{}' | openssl dgst -sha256 -hmac secret
    expect(driveuSignature('secret', Buffer.from('{}'))).toBe('sha256=77325902caca812dc259733aacd046b73817372c777b8d95b402647474516e13');
  });
});
