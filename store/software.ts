import type { Prisma } from '../infra/prisma';
import type { SoftwareStatus } from '../domain/software';

/**
 * The robots' software as Greengrass last reported it (`device_software`, one row per known
 * robot), written by the software-status poller and by the API's fresh reads; and the walk over
 * known robots that the poller makes.
 */

/** Upserts into `device_software` for robots that have a `devices` row; others are skipped. */
export async function writeSoftwareStatus(prisma: Prisma, statuses: SoftwareStatus[]): Promise<void> {
  for (const s of statuses) {
    const lastStatusUpdateAt = s.coreDevice?.lastStatusUpdateAt ? new Date(s.coreDevice.lastStatusUpdateAt) : null;
    await prisma.$executeRaw`
      INSERT INTO device_software (serial_number, core_status, core_version, platform, architecture, last_status_update_at,
        installed_components, effective_deployments, error, polled_at)
      SELECT serial_number, ${s.coreDevice?.status ?? null}, ${s.coreDevice?.coreVersion ?? null}, ${s.coreDevice?.platform ?? null},
        ${s.coreDevice?.architecture ?? null}, ${lastStatusUpdateAt}::timestamptz,
        ${JSON.stringify(s.installedComponents)}::jsonb, ${JSON.stringify(s.effectiveDeployments)}::jsonb, ${s.error}, ${new Date(s.updatedAt ?? Date.now())}
      FROM devices WHERE serial_number = ${s.serial}
      ON CONFLICT (serial_number) DO UPDATE SET core_status = EXCLUDED.core_status, core_version = EXCLUDED.core_version,
        platform = EXCLUDED.platform, architecture = EXCLUDED.architecture, last_status_update_at = EXCLUDED.last_status_update_at,
        installed_components = EXCLUDED.installed_components, effective_deployments = EXCLUDED.effective_deployments,
        error = EXCLUDED.error, polled_at = EXCLUDED.polled_at
      WHERE device_software.polled_at <= EXCLUDED.polled_at`;
  }
}

/** A robot's software from the projection; null when the robot is not known, empty when it was never polled. */
export async function readProjectedSoftware(prisma: Prisma, serial: string): Promise<SoftwareStatus | null> {
  const row = await prisma.device.findUnique({ where: { serialNumber: serial }, select: { software: true } });
  if (!row) return null;
  const s = row.software;
  if (!s) return { serial, coreDevice: null, installedComponents: [], effectiveDeployments: [], error: null, updatedAt: null };
  return {
    serial,
    coreDevice:
      s.coreStatus === null
        ? null
        : {
            status: s.coreStatus,
            coreVersion: s.coreVersion,
            platform: s.platform,
            architecture: s.architecture,
            lastStatusUpdateAt: s.lastStatusUpdateAt?.toISOString() ?? null,
          },
    installedComponents: s.installedComponents as SoftwareStatus['installedComponents'],
    effectiveDeployments: s.effectiveDeployments as SoftwareStatus['effectiveDeployments'],
    error: s.error,
    updatedAt: s.polledAt.toISOString(),
  };
}

export async function isKnownRobot(prisma: Prisma, serial: string): Promise<boolean> {
  return (await prisma.device.count({ where: { serialNumber: serial } })) > 0;
}

/** A page of known robots in serial order, for the poller to walk the fleet. */
export async function listRobotSerials(prisma: Prisma, input: { after: string | null; limit: number }): Promise<string[]> {
  const rows = await prisma.device.findMany({
    where: input.after === null ? {} : { serialNumber: { gt: input.after } },
    select: { serialNumber: true },
    orderBy: { serialNumber: 'asc' },
    take: input.limit,
  });
  return rows.map((r) => r.serialNumber);
}

export const countRobots = (prisma: Prisma) => prisma.device.count();

/** Every known robot, for the local Greengrass stand-in to treat as a core device. */
export async function listAllRobotSerials(prisma: Prisma): Promise<string[]> {
  return (await prisma.device.findMany({ select: { serialNumber: true } })).map((d) => d.serialNumber);
}
