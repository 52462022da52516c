-- Rejected robot messages name their robot (from the topic), for GET /v1/rejected-messages?serial=,
-- and keep heartbeats applied without a part that failed validation (applied = true).
ALTER TABLE "rejected_messages" ADD COLUMN "serial_number" TEXT,
ADD COLUMN "applied" BOOLEAN NOT NULL DEFAULT false;

-- CreateIndex
CREATE INDEX "rejected_messages_serial_number_id_idx" ON "rejected_messages"("serial_number", "id");
