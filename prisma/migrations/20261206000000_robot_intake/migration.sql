-- What the ingest decides a robot's heartbeats by (domain/heartbeat-intake.ts), read under a row
-- lock so that several ingest workers decide as one: the robot's clock epoch, and the last
-- heartbeat queued for its workflow.
ALTER TABLE "devices" ADD COLUMN "clock_offset_ms" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN "newest_received_at" TIMESTAMPTZ(3),
ADD COLUMN "clock_behind_received_at" TIMESTAMPTZ(3),
ADD COLUMN "clock_behind_time_ms" BIGINT,
ADD COLUMN "forwarded_fingerprint" TEXT,
ADD COLUMN "forwarded_at" TIMESTAMPTZ(3);
