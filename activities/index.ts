import type { Prisma } from '../infra/prisma';
import * as devices from './devices';

/** Activities get their dependencies here, so tests hand in real ones without module mocks. */
export function createActivities(deps: { prisma: Prisma }) {
  return {
    recordRobotChanges: (change: Parameters<typeof devices.recordRobotChanges>[1]) => devices.recordRobotChanges(deps.prisma, change),
    readLastSeen: (serial: string) => devices.readLastSeen(deps.prisma, serial),
  };
}
