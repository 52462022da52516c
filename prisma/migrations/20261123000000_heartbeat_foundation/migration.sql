-- CreateTable
CREATE TABLE "devices" (
    "serial_number" VARCHAR(255) NOT NULL,
    "lat" DOUBLE PRECISION,
    "lng" DOUBLE PRECISION,
    "heading" DOUBLE PRECISION,
    "horizontal_accuracy" DOUBLE PRECISION,
    "altitude" DOUBLE PRECISION,
    "speed_mph" DOUBLE PRECISION,
    "location_updated_at" TIMESTAMPTZ(3),
    "online" BOOLEAN NOT NULL DEFAULT false,
    "connectivity_updated_at" TIMESTAMPTZ(3),
    "network_type" VARCHAR(20),
    "signal_strength" INTEGER,
    "driveu_streamer_status" VARCHAR(50),
    "pilot_connected" BOOLEAN NOT NULL DEFAULT false,
    "driveu_session_id" VARCHAR(255),
    "driveu_updated_at" TIMESTAMPTZ(3),
    "lid_is_open" BOOLEAN NOT NULL DEFAULT false,
    "lid_updated_at" TIMESTAMPTZ(3),
    "last_heartbeat_at" TIMESTAMPTZ(3),
    "last_seen_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "devices_pkey" PRIMARY KEY ("serial_number")
);

-- CreateTable
CREATE TABLE "device_batteries" (
    "id" SERIAL NOT NULL,
    "serial_number" VARCHAR(255) NOT NULL,
    "battery_index" INTEGER NOT NULL,
    "charge_percent" INTEGER,
    "voltage" DOUBLE PRECISION,
    "current" DOUBLE PRECISION,
    "temperature" DOUBLE PRECISION,
    "is_charging" BOOLEAN,
    "updated_at" TIMESTAMPTZ(3),

    CONSTRAINT "device_batteries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "device_components" (
    "id" SERIAL NOT NULL,
    "serial_number" VARCHAR(255) NOT NULL,
    "component_name" VARCHAR(100) NOT NULL,
    "status_code" VARCHAR(50) NOT NULL,
    "message" TEXT,
    "updated_at" TIMESTAMPTZ(3),

    CONSTRAINT "device_components_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rejected_messages" (
    "id" BIGSERIAL NOT NULL,
    "topic" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rejected_messages_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "domain_events" (
    "seq" BIGSERIAL NOT NULL,
    "id" VARCHAR(200) NOT NULL,
    "type" VARCHAR(100) NOT NULL,
    "serial" VARCHAR(255),
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "data" JSONB NOT NULL,
    "recorded_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "domain_events_pkey" PRIMARY KEY ("seq")
);

-- CreateIndex
CREATE INDEX "devices_online_idx" ON "devices"("online");

-- CreateIndex
CREATE UNIQUE INDEX "device_batteries_serial_number_battery_index_key" ON "device_batteries"("serial_number", "battery_index");

-- CreateIndex
CREATE UNIQUE INDEX "device_components_serial_number_component_name_key" ON "device_components"("serial_number", "component_name");

-- CreateIndex
CREATE INDEX "rejected_messages_received_at_idx" ON "rejected_messages"("received_at");

-- CreateIndex
CREATE UNIQUE INDEX "domain_events_id_key" ON "domain_events"("id");

-- CreateIndex
CREATE INDEX "domain_events_type_seq_idx" ON "domain_events"("type", "seq");

-- CreateIndex
CREATE INDEX "domain_events_serial_seq_idx" ON "domain_events"("serial", "seq");

-- AddForeignKey
ALTER TABLE "device_batteries" ADD CONSTRAINT "device_batteries_serial_number_fkey" FOREIGN KEY ("serial_number") REFERENCES "devices"("serial_number") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "device_components" ADD CONSTRAINT "device_components_serial_number_fkey" FOREIGN KEY ("serial_number") REFERENCES "devices"("serial_number") ON DELETE CASCADE ON UPDATE CASCADE;
