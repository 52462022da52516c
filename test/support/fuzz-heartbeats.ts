import fc from 'fast-check';
import { componentCodes, type RawHeartbeat } from '../../domain/heartbeat';
import { hostileJson, hostileValue, setAt } from './hostile';

/** Heartbeats for the fuzz tests: valid ones, and valid ones with one field made hostile. */

const serial = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const finite = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true });

export const validHeartbeat: fc.Arbitrary<RawHeartbeat & { serial: string; timestamp: number }> = fc.record(
  {
    serial,
    timestamp: fc.integer({ min: 1, max: 4_102_444_800_000 }),
    gps: fc.record(
      { lat: finite(-90, 90), lng: finite(-180, 180), heading: finite(0, 360), speed_mph: finite(0, 100) },
      { requiredKeys: ['lat', 'lng'] },
    ),
    batteries: fc
      .uniqueArray(fc.integer({ min: 0, max: 15 }), { maxLength: 16 })
      .chain((indexes) =>
        fc.tuple(...indexes.map((index) => fc.record({ index: fc.constant(index), charge_percent: finite(0, 100), is_charging: fc.boolean() }))),
      ),
    components: fc.dictionary(fc.stringMatching(/^[A-Z][A-Z0-9_]{0,20}$/), fc.constantFrom(...componentCodes), { maxKeys: 10 }),
    lid: fc.record({ is_open: fc.boolean() }),
    network: fc.record({ type: fc.constantFrom('WIFI' as const, 'CELLULAR' as const, 'ETHERNET' as const), signal_strength: fc.integer({ min: -200, max: 100 }) }),
    events: fc.array(
      fc.record({ type: fc.constant('PIN_ENTRY'), pin: fc.stringMatching(/^\d{2,10}$/), timestamp: fc.integer({ min: 1, max: 4_102_444_800_000 }) }),
      { maxLength: 5 },
    ),
  },
  { requiredKeys: ['serial', 'timestamp'] },
);

/** Where a hostile value goes; each path exists in a full valid heartbeat or is created. */
export const fieldPaths: (string | number)[][] = [
  ['serial'],
  ['timestamp'],
  ['gps'],
  ['gps', 'lat'],
  ['gps', 'lng'],
  ['gps', 'heading'],
  ['gps', 'speed_mph'],
  ['batteries'],
  ['batteries', 0],
  ['batteries', 0, 'index'],
  ['batteries', 0, 'charge_percent'],
  ['batteries', 0, 'is_charging'],
  ['components'],
  ['components', 'GPS'],
  ['lid'],
  ['lid', 'is_open'],
  ['network'],
  ['network', 'type'],
  ['network', 'signal_strength'],
  ['events'],
  ['events', 0],
  ['events', 0, 'type'],
  ['events', 0, 'pin'],
  ['events', 0, 'timestamp'],
];

/** A valid heartbeat with one field replaced by a hostile value; `text` is what goes on the wire. */
export const heartbeatCase = fc
  .tuple(validHeartbeat, fc.constantFrom(...fieldPaths), hostileValue)
  .map(([raw, path, value]) => ({ raw, path, value, text: hostileJson(setAt(raw, path, value)) }));
