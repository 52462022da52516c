import { createHmac } from 'node:crypto';
import { retryAfterMs } from '../../activities/partners/http';
import { emptySnapshot, etaSeconds, mergeSnapshot, partnerProgress, partnerVisible, type DeliverySnapshot, type PartnerStatusUpdate } from '../../domain/partner-delivery';
import { buildVehicleStatus, doorDashStatus, signDoorDashJwt, toDoorDashStatus, vehicleStatusSchema, verifyDoorDashJwt } from '../../domain/partner-doordash';
import { tripStages } from '../../domain/operations-events';

const creds = { developerId: 'dev-1', keyId: 'key-1', signingSecret: Buffer.from('a secret of 32 bytes, more or le').toString('base64url') };

describe('trip stage to DoorDash delivery status', () => {
  it('maps every stage, and the outcome decides the end', () => {
    for (const stage of tripStages) expect(toDoorDashStatus(stage, null).status).toBeTruthy();
    expect(toDoorDashStatus('EN_ROUTE_TO_DROPOFF', null)).toEqual({ status: 'HEADING_TO_DROPOFF_LOCATION', failure: null });
    expect(toDoorDashStatus('AT_PICKUP', null).status).toBe('ARRIVED_AT_PICKUP_LOCATION');
    expect(toDoorDashStatus(null, null).status).toBe('VEHICLE_ASSIGNED');
    expect(toDoorDashStatus('AT_DROPOFF', 'DELIVERED')).toEqual({ status: 'DELIVERED', failure: null });
    expect(toDoorDashStatus('AT_DROPOFF', 'customer_unavailable')).toEqual({ status: 'DELIVERY_FAILED', failure: 'CUSTOMER_UNAVAILABLE' });
    expect(toDoorDashStatus('LOADED', 'cancelled').status).toBe('DELIVERY_CANCELLED');
  });

  it('builds a VehicleStatus DoorDash accepts, with an ETA while heading to the drop-off', () => {
    const update: PartnerStatusUpdate = {
      provider: 'doordash',
      deliveryId: 'd1',
      providerVehicleId: 'v1',
      snapshot: { ...emptySnapshot, stage: 'EN_ROUTE_TO_DROPOFF', stageAt: 1 },
      dropoff: { lat: 37.7849, lng: -122.4194 },
      location: { lat: 37.7749, lng: -122.4194, altitude: 10, speedMph: 3 },
      pushId: 'p1',
    };
    const body = buildVehicleStatus(update);
    expect(vehicleStatusSchema.parse(body)).toEqual(body);
    expect(body).toMatchObject({ vehicle_id: 'v1', delivery_status: 'HEADING_TO_DROPOFF_LOCATION', delivery_failure: null, elevation: 10, vehicle_location: { lat: 37.7749 } });
    // 1.11 km at 3 mph (1.34 m/s): about 829 s.
    expect(body.eta_to_dropoff).toBeGreaterThan(800);
    expect(body.eta_to_dropoff).toBeLessThan(860);
    expect(buildVehicleStatus({ ...update, snapshot: { ...update.snapshot, stage: 'AT_DROPOFF' } }).eta_to_dropoff).toBe(0);
    expect(etaSeconds({ lat: 0, lng: 0 }, { lat: 0, lng: 0 }, null)).toBe(0);
  });
});

describe('DoorDash JWT', () => {
  const now = 1_767_000_000;
  it('is HS256 with dd-ver, aud, iss, kid, iat and exp, signed with the base64url-decoded secret', () => {
    const jwt = signDoorDashJwt(creds, now);
    const [header, claims, signature] = jwt.split('.');
    expect(JSON.parse(Buffer.from(header, 'base64url').toString())).toEqual({ alg: 'HS256', typ: 'JWT', 'dd-ver': 'DD-JWT-V1' });
    expect(JSON.parse(Buffer.from(claims, 'base64url').toString())).toEqual({ aud: 'doordash', iss: 'dev-1', kid: 'key-1', iat: now, exp: now + 300 });
    const expected = createHmac('sha256', Buffer.from(creds.signingSecret, 'base64url')).update(`${header}.${claims}`).digest('base64url');
    expect(signature).toBe(expected);
    expect(verifyDoorDashJwt(jwt, creds, now + 10)).toBeNull();
  });

  it('is refused when tampered with, expired, or for another developer', () => {
    const jwt = signDoorDashJwt(creds, now);
    expect(verifyDoorDashJwt(jwt, creds, now + 301)).toBe('expired');
    expect(verifyDoorDashJwt(jwt, { ...creds, developerId: 'other' }, now)).toBe('iss is not the developer id');
    expect(verifyDoorDashJwt(jwt, { ...creds, signingSecret: Buffer.from('another').toString('base64url') }, now)).toBe('bad signature');
    expect(verifyDoorDashJwt(`${jwt}x`, creds, now)).toBe('bad signature');
  });
});

describe('partner delivery snapshots', () => {
  it('keep the newest stage, and an outcome and end once known', () => {
    const atPickup = { stage: 'AT_PICKUP' as const, stageAt: 5, outcome: null, ended: false };
    const older = { stage: 'EN_ROUTE_TO_PICKUP' as const, stageAt: 3, outcome: null, ended: false };
    expect(mergeSnapshot(atPickup, older)).toEqual(atPickup);
    const done = mergeSnapshot(atPickup, { stage: 'COMPLETED', stageAt: 9, outcome: 'DELIVERED', ended: true });
    expect(mergeSnapshot(done, { ...atPickup, ended: false })).toEqual(done);
    expect(partnerVisible(done)).not.toBe(partnerVisible(atPickup));
  });

  it("keep Deliveries' newest status beside the stage, and a snapshot without one keeps its old shape", () => {
    const pickedUp: DeliverySnapshot = { ...emptySnapshot, deliveryStatus: 'PICKED_UP', deliveryStatusAt: 6 };
    const merged = mergeSnapshot({ stage: 'AT_PICKUP', stageAt: 5, outcome: null, ended: false }, pickedUp);
    expect(merged).toEqual({ stage: 'AT_PICKUP', stageAt: 5, outcome: null, ended: false, deliveryStatus: 'PICKED_UP', deliveryStatusAt: 6 });
    expect(mergeSnapshot(merged, { ...emptySnapshot, deliveryStatus: 'AT_PICKUP', deliveryStatusAt: 4 })).toEqual(merged);
    expect(mergeSnapshot(merged, { ...emptySnapshot, deliveryStatus: null, deliveryStatusAt: null })).toEqual(merged);
    expect(partnerVisible(merged)).not.toBe(partnerVisible({ ...merged, deliveryStatus: undefined }));
    // Runs started before deliveries had a status: same shape, same visible text as then.
    expect(mergeSnapshot(emptySnapshot, { stage: 'LOADED', stageAt: 1, outcome: null, ended: false })).toEqual({ stage: 'LOADED', stageAt: 1, outcome: null, ended: false });
    expect(partnerVisible({ stage: 'LOADED', stageAt: 1, outcome: null, ended: false })).toBe('LOADED|');
  });

  it("take the newer of Deliveries' status and the trip's stage; an end from Deliveries is final", () => {
    const s = (over: Partial<DeliverySnapshot>): DeliverySnapshot => ({ ...emptySnapshot, ...over });
    expect(partnerProgress(s({}))).toEqual({ status: 'ASSIGNED', failure: null });
    expect(partnerProgress(s({ stage: 'AT_PICKUP', stageAt: 5, deliveryStatus: 'PICKED_UP', deliveryStatusAt: 6 })).status).toBe('PICKED_UP');
    expect(partnerProgress(s({ stage: 'EN_ROUTE_TO_DROPOFF', stageAt: 7, deliveryStatus: 'PICKED_UP', deliveryStatusAt: 6 })).status).toBe('EN_ROUTE_TO_DROPOFF');
    expect(partnerProgress(s({ stage: 'AT_DROPOFF', stageAt: 9, outcome: 'DELIVERED', deliveryStatus: 'FAILED', deliveryStatusAt: 1 }))).toEqual({ status: 'FAILED', failure: 'FAILED' });
    expect(partnerProgress(s({ stage: 'AT_DROPOFF', stageAt: 9, outcome: 'customer_absent', deliveryStatus: 'AT_DROPOFF', deliveryStatusAt: 10 }))).toEqual({
      status: 'FAILED',
      failure: 'CUSTOMER_ABSENT',
    });
    expect(doorDashStatus(s({ deliveryStatus: 'EN_ROUTE_TO_DROPOFF', deliveryStatusAt: 1 })).status).toBe('HEADING_TO_DROPOFF_LOCATION');
    expect(doorDashStatus(s({ deliveryStatus: 'CANCELLED', deliveryStatusAt: 1 }))).toEqual({ status: 'DELIVERY_CANCELLED', failure: 'CANCELLED' });
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs(null)).toBe(1000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
  });
});
