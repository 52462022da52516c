import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** The one place for Temporal names: task queues, workflow IDs, search attributes, timing defaults. */

export const taskQueues = {
  fleet: 'fleet',
} as const;

export const workflowIds = {
  robot: (serial: string) => `robot:${serial}`,
  lidCycle: (serial: string, cycleId: string) => `lid-cycle:${serial}:${cycleId}`,
  command: (serial: string, commandId: string) => `command:${serial}:${commandId}`,
  deployment: (deploymentId: string) => `deployment:${deploymentId}`,
  partnerDelivery: (provider: string, deliveryId: string) => `partner-delivery:${provider}:${deliveryId}`,
  /** One per fleet (per task queue in tests): walks the robots, reading their Greengrass software status. */
  softwareStatusPoller: 'software-status-poller',
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
  /** Publishing to the MQTT broker: retried until the command expires (the workflow then records TIMEOUT). */
  mqttPublishActivity: { startToCloseTimeout: '10 seconds', retry: { initialInterval: '500 ms', maximumInterval: '5 seconds', backoffCoefficient: 2 } },
  /** A Greengrass API call (the SDK already retried throttling and 5xx a few times); validation and access errors are non-retryable. */
  greengrassActivity: { startToCloseTimeout: '60 seconds', scheduleToCloseTimeout: '15 minutes', retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 } },
  /** Polling a rollout: the activity fails (benignly) until a device's state changes, so this policy paces the polls. */
  greengrassPollActivity: { startToCloseTimeout: '2 minutes', retry: { initialInterval: '1 second', maximumInterval: '10 seconds', backoffCoefficient: 1.5 } },
  /**
   * A status push to a partner: 429 waits its Retry-After (the activity's nextRetryDelay), 5xx and
   * network errors back off, other 4xx are not retried. After 2 minutes the push is dropped: the
   * next one (on change or interval) carries fresher data anyway.
   */
  partnerPushActivity: {
    startToCloseTimeout: '15 seconds',
    scheduleToCloseTimeout: '2 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2 },
  },
};

export const defaultTemporalAddress = '127.0.0.1:7233';
