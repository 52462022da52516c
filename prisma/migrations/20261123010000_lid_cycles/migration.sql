-- CreateTable
CREATE TABLE "lid_cycles" (
    "cycle_id" UUID NOT NULL,
    "serial_number" VARCHAR(255) NOT NULL,
    "context_id" VARCHAR(255),
    "pin_type" VARCHAR(20),
    "forced" BOOLEAN NOT NULL DEFAULT false,
    "unlock_command_id" UUID,
    "status" VARCHAR(20) NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "ended_at" TIMESTAMPTZ(3),
    "timeout_seconds" DOUBLE PRECISION NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "lid_cycles_pkey" PRIMARY KEY ("cycle_id")
);

-- CreateTable
CREATE TABLE "active_unlock_pins" (
    "serial_number" VARCHAR(255) NOT NULL,
    "pin_hash" VARCHAR(64) NOT NULL,
    "pin_type" VARCHAR(20) NOT NULL,
    "context_id" VARCHAR(255),
    "flow" VARCHAR(20) NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "active_unlock_pins_pkey" PRIMARY KEY ("serial_number")
);

-- CreateTable
CREATE TABLE "pin_entries" (
    "id" UUID NOT NULL,
    "serial_number" VARCHAR(255) NOT NULL,
    "cycle_id" UUID,
    "source" VARCHAR(10) NOT NULL,
    "robot_timestamp" TIMESTAMPTZ(3),
    "entered_pin_hash" VARCHAR(64) NOT NULL,
    "expected_pin_hash" VARCHAR(64),
    "pin_type" VARCHAR(20),
    "context_id" VARCHAR(255),
    "outcome" VARCHAR(20) NOT NULL,
    "success" BOOLEAN NOT NULL,
    "entered_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "pin_entries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "pin_lockouts" (
    "serial_number" VARCHAR(255) NOT NULL,
    "failed_attempts" INTEGER NOT NULL DEFAULT 0,
    "window_started_at" TIMESTAMPTZ(3),
    "locked_until" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pin_lockouts_pkey" PRIMARY KEY ("serial_number")
);

-- CreateTable
CREATE TABLE "device_commands" (
    "command_id" UUID NOT NULL,
    "serial_number" VARCHAR(255) NOT NULL,
    "command_type" VARCHAR(30) NOT NULL,
    "parameters" JSONB NOT NULL,
    "request_id" VARCHAR(255),
    "source" VARCHAR(20) NOT NULL,
    "context_id" VARCHAR(255),
    "pin_entry_id" UUID,
    "status" VARCHAR(20) NOT NULL,
    "message" TEXT,
    "issued_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "sent_at" TIMESTAMPTZ(3),
    "acknowledged_at" TIMESTAMPTZ(3),
    "completed_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "device_commands_pkey" PRIMARY KEY ("command_id")
);

-- CreateIndex
CREATE INDEX "lid_cycles_serial_number_started_at_idx" ON "lid_cycles"("serial_number", "started_at");

-- CreateIndex
CREATE INDEX "pin_entries_serial_number_entered_at_idx" ON "pin_entries"("serial_number", "entered_at");

-- CreateIndex
CREATE INDEX "pin_entries_cycle_id_idx" ON "pin_entries"("cycle_id");

-- CreateIndex
CREATE UNIQUE INDEX "pin_entries_serial_number_robot_timestamp_key" ON "pin_entries"("serial_number", "robot_timestamp");

-- CreateIndex
CREATE INDEX "device_commands_serial_number_command_type_issued_at_idx" ON "device_commands"("serial_number", "command_type", "issued_at");

-- CreateIndex
CREATE UNIQUE INDEX "device_commands_serial_number_request_id_key" ON "device_commands"("serial_number", "request_id");

-- AddForeignKey
ALTER TABLE "pin_entries" ADD CONSTRAINT "pin_entries_cycle_id_fkey" FOREIGN KEY ("cycle_id") REFERENCES "lid_cycles"("cycle_id") ON DELETE SET NULL ON UPDATE CASCADE;
