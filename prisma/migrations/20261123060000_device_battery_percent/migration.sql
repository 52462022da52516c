-- The robot's lowest battery charge, written by the heartbeat upsert (activities/devices.ts
-- writeHeartbeats), so that the list routes filter, order and count on a column instead of a
-- subquery on device_batteries per row.
-- AlterTable
ALTER TABLE "devices" ADD COLUMN "battery_percent" INTEGER;

-- Backfill from the batteries already projected.
UPDATE "devices" d SET "battery_percent" = b."charge"
FROM (SELECT "serial_number", min("charge_percent") AS "charge" FROM "device_batteries" GROUP BY "serial_number") b
WHERE b."serial_number" = d."serial_number";
