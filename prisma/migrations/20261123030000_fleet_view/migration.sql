-- CreateTable
CREATE TABLE "fleet_devices" (
    "serial_number" VARCHAR(255) NOT NULL,
    "status" VARCHAR(30) NOT NULL,
    "status_reason" TEXT NOT NULL,
    "active_trip_id" VARCHAR(200),
    "active_trip_type" VARCHAR(30),
    "active_trip_stage" VARCHAR(30),
    "active_delivery_id" VARCHAR(200),
    "active_trip_started_at" TIMESTAMPTZ(3),
    "fo_tasks" JSONB NOT NULL DEFAULT '[]',
    "fo_task_count" INTEGER NOT NULL DEFAULT 0,
    "deployment_id" VARCHAR(200),
    "deployment_location_id" VARCHAR(200),
    "deployment_needs_pickup" BOOLEAN NOT NULL DEFAULT false,
    "provider_mappings" JSONB NOT NULL DEFAULT '[]',
    "pilot_session_started_at" TIMESTAMPTZ(3),
    "facts_version" INTEGER NOT NULL DEFAULT 0,
    "trips_synced_at" TIMESTAMPTZ(3),
    "tasks_synced_at" TIMESTAMPTZ(3),
    "deployments_synced_at" TIMESTAMPTZ(3),
    "deliveries_synced_at" TIMESTAMPTZ(3),
    "status_changed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "fleet_devices_pkey" PRIMARY KEY ("serial_number")
);

-- CreateTable
CREATE TABLE "operations_events" (
    "id" VARCHAR(200) NOT NULL,
    "type" VARCHAR(100) NOT NULL,
    "serial_number" VARCHAR(255) NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "data" JSONB NOT NULL,
    "outcome" VARCHAR(20) NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "operations_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "fleet_trips" (
    "trip_id" VARCHAR(200) NOT NULL,
    "serial_number" VARCHAR(255) NOT NULL,
    "trip_type" VARCHAR(30),
    "stage" VARCHAR(30) NOT NULL,
    "delivery_id" VARCHAR(200),
    "outcome" VARCHAR(100),
    "started_at" TIMESTAMPTZ(3),
    "ended_at" TIMESTAMPTZ(3),
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "fleet_trips_pkey" PRIMARY KEY ("trip_id")
);

-- CreateTable
CREATE TABLE "fleet_fo_tasks" (
    "task_id" VARCHAR(200) NOT NULL,
    "serial_number" VARCHAR(255) NOT NULL,
    "task_type" VARCHAR(30),
    "status" VARCHAR(20) NOT NULL,
    "created_at" TIMESTAMPTZ(3),
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "fleet_fo_tasks_pkey" PRIMARY KEY ("task_id")
);

-- CreateTable
CREATE TABLE "fleet_deployments" (
    "deployment_id" VARCHAR(200) NOT NULL,
    "serial_number" VARCHAR(255) NOT NULL,
    "location_id" VARCHAR(200),
    "needs_pickup" BOOLEAN NOT NULL DEFAULT false,
    "started_at" TIMESTAMPTZ(3),
    "ended_at" TIMESTAMPTZ(3),
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "fleet_deployments_pkey" PRIMARY KEY ("deployment_id")
);

-- CreateTable
CREATE TABLE "fleet_provider_mappings" (
    "provider" VARCHAR(50) NOT NULL,
    "delivery_id" VARCHAR(200) NOT NULL,
    "serial_number" VARCHAR(255) NOT NULL,
    "provider_vehicle_id" VARCHAR(200),
    "dropoff_lat" DOUBLE PRECISION,
    "dropoff_lng" DOUBLE PRECISION,
    "created_at" TIMESTAMPTZ(3),
    "ended_at" TIMESTAMPTZ(3),
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "fleet_provider_mappings_pkey" PRIMARY KEY ("provider","delivery_id")
);

-- CreateTable
CREATE TABLE "driveu_units" (
    "serial_number" VARCHAR(255) NOT NULL,
    "uuid" VARCHAR(100) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "driveu_units_pkey" PRIMARY KEY ("serial_number")
);

-- CreateTable
CREATE TABLE "driveu_events" (
    "id" BIGSERIAL NOT NULL,
    "uuid" VARCHAR(100) NOT NULL,
    "serial_number" VARCHAR(255),
    "unit" VARCHAR(20) NOT NULL,
    "status" VARCHAR(50) NOT NULL,
    "time_micros" BIGINT NOT NULL,
    "payload" JSONB NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "driveu_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "fleet_devices_status_serial_number_idx" ON "fleet_devices"("status", "serial_number");

-- CreateIndex
CREATE INDEX "fleet_devices_active_trip_type_idx" ON "fleet_devices"("active_trip_type");

-- CreateIndex
CREATE INDEX "fleet_devices_active_trip_stage_idx" ON "fleet_devices"("active_trip_stage");

-- CreateIndex
CREATE INDEX "fleet_devices_fo_task_count_idx" ON "fleet_devices"("fo_task_count");

-- CreateIndex
CREATE INDEX "operations_events_serial_number_occurred_at_idx" ON "operations_events"("serial_number", "occurred_at");

-- CreateIndex
CREATE INDEX "fleet_trips_serial_number_ended_at_idx" ON "fleet_trips"("serial_number", "ended_at");

-- CreateIndex
CREATE INDEX "fleet_trips_delivery_id_idx" ON "fleet_trips"("delivery_id");

-- CreateIndex
CREATE INDEX "fleet_fo_tasks_serial_number_status_idx" ON "fleet_fo_tasks"("serial_number", "status");

-- CreateIndex
CREATE INDEX "fleet_deployments_serial_number_ended_at_idx" ON "fleet_deployments"("serial_number", "ended_at");

-- CreateIndex
CREATE INDEX "fleet_provider_mappings_serial_number_ended_at_idx" ON "fleet_provider_mappings"("serial_number", "ended_at");

-- CreateIndex
CREATE UNIQUE INDEX "driveu_units_uuid_key" ON "driveu_units"("uuid");

-- CreateIndex
CREATE INDEX "driveu_events_uuid_id_idx" ON "driveu_events"("uuid", "id");

-- Backfill: robots already in the projection join the fleet view with the status they have now
-- (no business facts yet, so OFFLINE or UNDEPLOYED, as domain/fleet-status.ts decides).
INSERT INTO "fleet_devices" ("serial_number", "status", "status_reason")
SELECT "serial_number",
       CASE WHEN "online" THEN 'UNDEPLOYED' ELSE 'OFFLINE' END,
       CASE WHEN "online" THEN 'Online, not deployed, no trip or FO task' ELSE 'No heartbeat within the offline threshold' END
FROM "devices";
