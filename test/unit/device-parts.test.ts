import { changedFields, mergeParts, noParts } from '../../domain/device-parts';
import type { Heartbeat } from '../../domain/heartbeat';

const hb = (patch: Partial<Heartbeat> = {}): Heartbeat => ({ serial: 'A', timestamp: 1, receivedAt: 1, batteries: [], components: {}, events: [], ...patch });

test('a first heartbeat changes every part it reports, and only those', () => {
  expect(mergeParts(noParts, hb({ location: { latitude: 1, longitude: 2 }, lidOpen: false })).changed).toEqual(['location', 'lidState']);
});

test('a part a heartbeat leaves out stays as it was and is not changed', () => {
  const { parts } = mergeParts(noParts, hb({ location: { latitude: 1, longitude: 2 }, network: { type: 'WIFI', signalStrength: -60 }, components: { GPS: 'OK' } }));
  const next = mergeParts(parts, hb({ components: { GPS: 'OK' } }));
  expect(next.changed).toEqual([]);
  expect(next.parts.location).toEqual(parts.location);
});

test('batteries and components are kept one by one: a change of one is a change', () => {
  const two = hb({ batteries: [{ batteryIndex: 0, chargePercent: 80 }, { batteryIndex: 1, chargePercent: 70 }], components: { GPS: 'OK', CAMERAS: 'OK' } });
  const { parts } = mergeParts(noParts, two);
  expect(mergeParts(parts, hb({ batteries: [{ batteryIndex: 1, chargePercent: 70 }] })).changed).toEqual([]);
  expect(mergeParts(parts, hb({ batteries: [{ batteryIndex: 1, chargePercent: 69 }] })).changed).toEqual(['batteries']);
  expect(mergeParts(parts, hb({ components: { CAMERAS: 'TIMEOUT' } })).changed).toEqual(['componentStatuses']);
  expect(mergeParts(parts, hb({ components: { CAMERAS: 'TIMEOUT' } })).parts.components).toEqual({ GPS: 'OK', CAMERAS: 'TIMEOUT' });
});

test('changedFields between two states is what the heartbeats in between changed, whatever the key order', () => {
  const first = mergeParts(noParts, hb({ location: { latitude: 1, longitude: 2 }, batteries: [{ batteryIndex: 0, chargePercent: 80 }], components: { GPS: 'OK', CAMERAS: 'OK' }, lidOpen: false }));
  const second = mergeParts(first.parts, hb({ location: { latitude: 1.1, longitude: 2 } }));
  const third = mergeParts(second.parts, hb({ components: { CAMERAS: 'TIMEOUT' } }));
  expect(changedFields(noParts, first.parts)).toEqual(first.changed);
  expect(changedFields(first.parts, second.parts)).toEqual(['location']);
  expect(changedFields(first.parts, third.parts)).toEqual(['location', 'componentStatuses']);
  const reordered = { ...third.parts, components: { CAMERAS: 'TIMEOUT', GPS: 'OK' } };
  expect(changedFields(third.parts, reordered)).toEqual([]);
});
