import type { Prisma } from '../infra/prisma';
import * as devices from './devices';

/** What activities touch; each feature adds its client here. */
export type ActivityDeps = { prisma: Prisma };

/** Activities get their dependencies here, so tests hand in real ones without module mocks. */
export function createActivities(deps: ActivityDeps) {
  return {
    recordRobotChanges: (change: Parameters<typeof devices.recordRobotChanges>[1]) => devices.recordRobotChanges(deps.prisma, change),
    readLastSeen: (serial: string) => devices.readLastSeen(deps.prisma, serial),
  };
}
