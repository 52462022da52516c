-- Delivery.StatusChanged facts (fleet_deliveries) and the delivery each robot is on, in its fleet
-- row; partners' vehicle ids looked up (GET /v1/partners/{provider}/vehicles/{providerVehicleId})
-- and filtered on (providerMappings.provider, providerMappings.providerVehicleId).
ALTER TABLE "fleet_devices" ADD COLUMN "delivery_id" VARCHAR(200),
ADD COLUMN "delivery_status" VARCHAR(30),
ADD COLUMN "delivery_merchant_id" VARCHAR(200),
ADD COLUMN "delivery_customer_id" VARCHAR(200),
ADD COLUMN "delivery_demand_id" VARCHAR(200);

-- CreateTable
CREATE TABLE "fleet_deliveries" (
    "delivery_id" VARCHAR(200) NOT NULL,
    "serial_number" VARCHAR(255) NOT NULL,
    "status" VARCHAR(30) NOT NULL,
    "merchant_id" VARCHAR(200),
    "customer_id" VARCHAR(200),
    "demand_id" VARCHAR(200),
    "ended_at" TIMESTAMPTZ(3),
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "fleet_deliveries_pkey" PRIMARY KEY ("delivery_id")
);

-- CreateIndex
CREATE INDEX "fleet_deliveries_serial_number_ended_at_idx" ON "fleet_deliveries"("serial_number", "ended_at");

-- CreateIndex
CREATE INDEX "fleet_provider_mappings_provider_provider_vehicle_id_idx" ON "fleet_provider_mappings"("provider", "provider_vehicle_id");

-- CreateIndex
CREATE INDEX "fleet_devices_provider_mappings_idx" ON "fleet_devices" USING GIN ("provider_mappings" jsonb_path_ops);
