import type { Prisma } from '../infra/prisma';
import type { GreengrassV2Client } from '@aws-sdk/client-greengrassv2';
import * as devices from './devices';
import * as greengrass from './greengrass';
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
    resolveTargetDevices: (targetArn: string) => greengrass.resolveTargetDevices(deps.greengrass, targetArn),
    createGreengrassDeployment: (input: Parameters<typeof greengrass.createGreengrassDeployment>[1]) => greengrass.createGreengrassDeployment(deps.greengrass, input),
    pollRolloutProgress: (input: greengrass.ProgressInput) => greengrass.pollRolloutProgress(deps.greengrass, input),
    cancelGreengrassDeployment: (greengrassDeploymentId: string) => greengrass.cancelGreengrassDeployment(deps.greengrass, greengrassDeploymentId),
    checkCanaryHealth: (input: Parameters<typeof greengrass.checkCanaryHealth>[2]) => greengrass.checkCanaryHealth(deps.greengrass, deps.prisma, input),
    recordDeployment: (input: Parameters<typeof greengrass.recordDeployment>[1]) => greengrass.recordDeployment(deps.prisma, input),
    pollSoftwareStatus: (serials: string[]) => greengrass.pollSoftwareStatus(deps.greengrass, deps.prisma, serials),
    listRobotSerials: (input: Parameters<typeof greengrass.listRobotSerials>[1]) => greengrass.listRobotSerials(deps.prisma, input),
    countRobots: () => greengrass.countRobots(deps.prisma),
    ...createLidActivities(deps),
    ...createCommandActivities(deps),
    ...createFleetActivities(deps),
  };
}
