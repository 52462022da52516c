import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** The one place for Temporal names: task queues, workflow IDs, search attributes, timing defaults. */

export const taskQueues = {
  fleet: 'fleet',
} as const;

export const workflowIds = {
  robot: (serial: string) => `robot:${serial}`,
  lidCycle: (serial: string, cycleId: string) => `lid-cycle:${serial}:${cycleId}`,
  deployment: (deploymentId: string) => `deployment:${deploymentId}`,
  partnerDelivery: (provider: string, deliveryId: string) => `partner-delivery:${provider}:${deliveryId}`,
};

export const searchAttributes = {
  robotSerial: defineSearchAttributeKey('RobotSerial', SearchAttributeType.KEYWORD),
  fleetStatus: defineSearchAttributeKey('FleetStatus', SearchAttributeType.KEYWORD),
  online: defineSearchAttributeKey('Online', SearchAttributeType.BOOL),
};

/** `--search-attribute` arguments for `temporal server start-dev`. */
export const searchAttributeFlags = ['RobotSerial=Keyword', 'FleetStatus=Keyword', 'Online=Bool'];

export const timing = {
  /** Fast, local database writes. */
  projectionActivity: { startToCloseTimeout: '10 seconds', retry: { initialInterval: '200 ms', maximumInterval: '10 seconds', backoffCoefficient: 2 } },
};

export const defaultTemporalAddress = '127.0.0.1:7233';
