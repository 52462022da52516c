-- What the robot's newest heartbeats reported, part by part, and the Device fields the last batch
-- changed (domain/device-parts.ts): GET /v1/device-updates/stream and Device.HeartbeatReceived.
ALTER TABLE "devices" ADD COLUMN "newest_parts" JSONB,
ADD COLUMN "updated_fields" TEXT[];
