-- CreateTable
CREATE TABLE "robot_inbox" (
    "id" BIGSERIAL NOT NULL,
    "serial_number" TEXT NOT NULL,
    "heartbeat" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "robot_inbox_pkey" PRIMARY KEY ("id")
);
