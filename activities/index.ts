import type { Prisma } from '../infra/prisma';
import type { GreengrassV2Client } from '@aws-sdk/client-greengrassv2';
import * as devices from '../store/devices';
import { createGreengrassActivities } from './greengrass';
import type { MqttClient } from 'mqtt';
import { createCommandActivities } from './commands';
import { createLidActivities } from './lid';
import { createFleetActivities } from './fleet';
import type { PartnerRegistry } from './partners';

/** What activities touch; each feature adds its client here. */
export type ActivityDeps = {
  prisma: Prisma;
  greengrass: GreengrassV2Client;
  /** Publishes commands to robots. */
  mqtt: MqttClient;
  /** PIN_HASH_SECRET: opens the sealed PIN of a Magic Lid SET_PIN command (domain/lid-pins.ts). */
  pinSecret?: string;
  /** Partner adapters (activities/partners) for the partner-delivery workflow; none: pushes fail as not configured. */
  partners?: PartnerRegistry;
};

/** Activities get their dependencies here, so tests hand in real ones without module mocks. */
export function createActivities(deps: ActivityDeps) {
  return {
    recordRobotChanges: (change: Parameters<typeof devices.recordRobotChanges>[1]) => devices.recordRobotChanges(deps.prisma, change),
    readLastSeen: (serial: string) => devices.readLastSeen(deps.prisma, serial),
    ...createGreengrassActivities(deps),
    ...createLidActivities(deps),
    ...createCommandActivities(deps),
    ...createFleetActivities(deps),
  };
}
