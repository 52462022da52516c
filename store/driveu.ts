import type { Prisma } from '../infra/prisma';
import type { DriveuReport, DriveuWebhookEvent } from '../domain/driveu';

/**
 * DriveU (`driveu_events`, `driveu_units`): every signed webhook event is kept, and the registry
 * says which DriveU unit belongs to which robot.
 */

/** Keeps the event with the robot its unit belongs to, and answers that robot (null: none claims it). */
export async function recordDriveuEvent(prisma: Prisma, event: DriveuWebhookEvent): Promise<string | null> {
  const unit = await prisma.driveuUnit.findUnique({ where: { uuid: event.uuid } });
  const serial = unit?.serialNumber ?? null;
  await prisma.driveuEvent.create({
    data: { uuid: event.uuid, serialNumber: serial, unit: event.unit, status: event.status, timeMicros: BigInt(event.time), payload: event },
  });
  return serial;
}

/** A unit belongs to one robot, a robot has one unit: the unit leaves any robot that had it. */
export async function assignDriveuUnit(prisma: Prisma, serial: string, uuid: string) {
  return prisma.$transaction(async (tx) => {
    await tx.driveuUnit.deleteMany({ where: { uuid, serialNumber: { not: serial } } });
    return tx.driveuUnit.upsert({ where: { serialNumber: serial }, create: { serialNumber: serial, uuid }, update: { uuid, updatedAt: new Date() } });
  });
}

/** The unit's last streamer report, as a status report; null when it has sent none. */
export async function readLastStreamerReport(prisma: Prisma, uuid: string): Promise<DriveuReport | null> {
  const last = await prisma.driveuEvent.findFirst({ where: { uuid, unit: 'streamer' }, orderBy: { timeMicros: 'desc' } });
  return last && { uuid, unit: last.unit, eventName: 'status', status: last.status, timeMicros: Number(last.timeMicros) };
}
