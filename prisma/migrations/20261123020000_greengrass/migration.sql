-- CreateTable
CREATE TABLE "device_software" (
    "serial_number" VARCHAR(255) NOT NULL,
    "core_status" VARCHAR(20),
    "core_version" VARCHAR(50),
    "platform" VARCHAR(255),
    "architecture" VARCHAR(255),
    "last_status_update_at" TIMESTAMPTZ(3),
    "installed_components" JSONB NOT NULL,
    "effective_deployments" JSONB NOT NULL,
    "error" TEXT,
    "polled_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "device_software_pkey" PRIMARY KEY ("serial_number")
);

-- CreateTable
CREATE TABLE "software_deployments" (
    "deployment_id" VARCHAR(64) NOT NULL,
    "request_id" VARCHAR(200),
    "target_arn" VARCHAR(2048) NOT NULL,
    "status" VARCHAR(20) NOT NULL,
    "phase" VARCHAR(20) NOT NULL,
    "reason" TEXT,
    "view" JSONB NOT NULL,
    "version" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completed_at" TIMESTAMPTZ(3),

    CONSTRAINT "software_deployments_pkey" PRIMARY KEY ("deployment_id")
);

-- CreateIndex
CREATE INDEX "device_software_polled_at_idx" ON "device_software"("polled_at");

-- CreateIndex
CREATE UNIQUE INDEX "software_deployments_request_id_key" ON "software_deployments"("request_id");

-- CreateIndex
CREATE INDEX "software_deployments_created_at_deployment_id_idx" ON "software_deployments"("created_at", "deployment_id");

-- CreateIndex
CREATE INDEX "software_deployments_status_idx" ON "software_deployments"("status");

-- AddForeignKey
ALTER TABLE "device_software" ADD CONSTRAINT "device_software_serial_number_fkey" FOREIGN KEY ("serial_number") REFERENCES "devices"("serial_number") ON DELETE CASCADE ON UPDATE CASCADE;
