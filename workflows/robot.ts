import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { Heartbeat } from '../domain/heartbeat';
import type { DomainEvent, EventDraft } from '../domain/events';
import { checkSilence, initialRobotState, silenceBackstop, type ComponentSighting, type RobotState } from '../domain/robot-state';
import { takeHeartbeats, type RobotBook } from '../domain/heartbeat-batch';
import { fleetStatusFor, type FleetFactsUpdate } from '../domain/fleet-status';
import { applyDriveuReport, type DriveuReport, type DriveuState } from '../domain/driveu-state';
import { searchAttributes, timing } from '../temporal.config';
import { defaultLidSettings, initialLidTracker, type LidSettings, type LidTracker, type LidWork } from '../domain/lid';
import { runLidWork } from './robot-lid';

/**
 * One long-running workflow per robot (`robot:<serial>`): keeps the device shadow, decides
 * online/offline and component health, and records those decisions. Telemetry reaches the
 * projection without passing through here (see ingest/), so this only wakes on changes.
 */

export type RobotWorkflowInput = {
  serial: string;
  offlineAfterMs: number;
  /** Lid cycles, PIN entries and unlocks (workflows/robot-lid.ts); from configuration at start. */
  lid?: LidSettings;
  /** Carried through continue-as-new; absent at the first start. */
  carry?: RobotCarry;
  /** Signals a run takes before it continues as new (tests lower it); default SIGNALS_PER_RUN. */
  signalsPerRun?: number;
} & CarriedBeforeRobotCarry;

/**
 * A run continues as new after this many signals even when the server does not suggest it: the
 * suggestion counts history events and size, not signals (temporalio/temporal#10941), and a run
 * takes at most 10,000 signals.
 */
export const SIGNALS_PER_RUN = 2000;

/** What a robot workflow carries through continue-as-new, as is. */
export type RobotCarry = RobotBook & {
  /** Heartbeats signalled but not taken yet. */
  pending: Heartbeat[];
  /** The business facts FleetStatus needs (fleetFactsSignal). */
  fleetFacts: FleetFactsUpdate | null;
  /** DriveU streamer status (driveuSignal), and reports not yet recorded. */
  driveu: DriveuState | null;
  driveuPending: DriveuReport[];
};

/** The same, as separate fields: how runs continued before `carry` pass it, so still read when `carry` is absent. */
type CarriedBeforeRobotCarry = {
  state?: RobotState;
  pending?: Heartbeat[];
  lidTracker?: LidTracker;
  componentsSeen?: ComponentSighting[];
  fleetFacts?: FleetFactsUpdate;
  driveu?: DriveuState;
  driveuPending?: DriveuReport[];
};

export const heartbeatsSignal = defineSignal<[{ heartbeats: Heartbeat[] }]>('heartbeats');
export const robotStateQuery = defineQuery<RobotState>('robotState');
/** Trips, FO tasks and deployment from POST /v1/operations-events; a version older than the one held is ignored. */
export const fleetFactsSignal = defineSignal<[FleetFactsUpdate]>('fleetFacts');
export const fleetFactsQuery = defineQuery<FleetFactsUpdate | null>('fleetFacts');
/** DriveU streamer reports from POST /v1/webhooks/driveu. */
export const driveuSignal = defineSignal<[DriveuReport]>('driveu');
/** From the ingest's silence sweeper (domain/silence.ts): the projection has not heard from this robot for the offline timeout. */
export const silenceSignal = defineSignal<[{ lastSeenAt: number }]>('silence');

const { recordRobotChanges, readLastSeen, recordDriveuStatus } = proxyActivities<ReturnType<typeof createActivities>>(timing.projectionActivity);
// The silence check (on the sweeper's signal or the backstop timer): as a local activity it costs
// one workflow task and a marker, not a scheduled activity's task, three events and a second task.
const local = proxyLocalActivities<ReturnType<typeof createActivities>>(timing.projectionActivity);

export async function robotWorkflow(input: RobotWorkflowInput): Promise<void> {
  const robot = carriedFrom(input);
  let signals = 0;
  setHandler(heartbeatsSignal, ({ heartbeats }) => {
    signals += 1;
    robot.pending.push(...heartbeats);
  });
  setHandler(robotStateQuery, () => robot.state);
  let factsArrived = robot.fleetFacts !== null;
  setHandler(fleetFactsSignal, (update) => {
    signals += 1;
    if (robot.fleetFacts !== null && update.version <= robot.fleetFacts.version) return;
    robot.fleetFacts = update;
    factsArrived = true;
  });
  setHandler(fleetFactsQuery, () => robot.fleetFacts);
  setHandler(driveuSignal, (report) => {
    signals += 1;
    robot.driveuPending.push(report);
  });
  let silenceReported = false;
  setHandler(silenceSignal, () => {
    signals += 1;
    silenceReported = true;
  });
  const woken = () => robot.pending.length > 0 || factsArrived || robot.driveuPending.length > 0 || silenceReported;
  // Runs started before the lid service replay without it; every newer run has it.
  const lidService = patched('lid-service');
  const lastSeenLocally = patched('last-seen-local-activity');
  // Late heartbeats (older than the newest applied) placed by robot time, for the lid and components.
  const placeLate = patched('late-heartbeats');
  // Runs started before it replay with the server's suggestion as the only trigger.
  const signalsPerRun = patched('signal-count-continue-as-new') ? (input.signalsPerRun ?? SIGNALS_PER_RUN) : Number.POSITIVE_INFINITY;

  while (!workflowInfo().continueAsNewSuggested && signals < signalsPerRun) {
    // Offline detection is the sweeper's signal; this far-off timer is the backstop. (A timer's
    // duration is not part of replay, so runs started with the old one-minute deadline go on.)
    const deadline = silenceBackstop(robot.state, input.offlineAfterMs);
    if (deadline === null) await condition(woken);
    else await condition(woken, Math.max(deadline - Date.now(), 1));

    const before = robot.state;
    const events: EventDraft[] = [];
    const lidWork: LidWork[] = [];
    // Woken by facts or DriveU alone, not by the deadline or the sweeper: no silence check.
    const sideWork = (factsArrived || robot.driveuPending.length > 0) && !silenceReported;
    factsArrived = false;
    silenceReported = false;
    if (robot.driveuPending.length > 0) robot.driveu = await recordDriveu(robot.state.serial, robot.driveu, robot.driveuPending.splice(0));
    if (robot.pending.length > 0) {
      const taken = takeHeartbeats(robot, robot.pending.splice(0), { placeLate, lidService });
      Object.assign(robot, taken.book);
      events.push(...taken.events);
      lidWork.push(...taken.lidWork);
    } else if (!sideWork) {
      const lastSeenAt = lastSeenLocally ? await local.readLastSeen(robot.state.serial) : await readLastSeen(robot.state.serial);
      const t = checkSilence(robot.state, lastSeenAt, Date.now(), input.offlineAfterMs);
      robot.state = t.state;
      events.push(...t.events);
    }
    const fleet = fleetStatusFor(robot.state.online, robot.fleetFacts);
    if (fleet.status !== robot.state.fleetStatus) robot.state = { ...robot.state, fleetStatus: fleet.status };
    if (events.length > 0) await record(before, robot.state, events);
    else if (before.fleetStatus !== robot.state.fleetStatus) upsertStatus(robot.state);
    if (lidWork.length > 0) robot.lidTracker = await runLidWork(robot.state.serial, input.lid ?? defaultLidSettings, robot.lidTracker, lidWork);
  }

  await condition(allHandlersFinished);
  await continueAsNew<typeof robotWorkflow>({ serial: input.serial, offlineAfterMs: input.offlineAfterMs, lid: input.lid, signalsPerRun: input.signalsPerRun, carry: robot });
}

function carriedFrom(input: RobotWorkflowInput): RobotCarry {
  if (input.carry) return input.carry;
  // A first run, or one continued before RobotCarry, whose carried state came as separate fields.
  return {
    state: input.state ?? initialRobotState(input.serial, Date.now()),
    lidTracker: input.lidTracker ?? initialLidTracker(),
    componentsSeen: input.componentsSeen ?? [],
    pending: input.pending ?? [],
    fleetFacts: input.fleetFacts ?? null,
    driveu: input.driveu ?? null,
    driveuPending: input.driveuPending ?? [],
  };
}

async function record(before: RobotState, after: RobotState, drafts: EventDraft[]): Promise<void> {
  const events: DomainEvent[] = drafts.map((d) => ({ ...d, id: uuid4() }));
  await recordRobotChanges({
    serial: after.serial,
    online: after.online,
    onlineChangedAt: after.onlineChangedAt,
    events,
  });
  if (before.online !== after.online || before.fleetStatus !== after.fleetStatus) upsertStatus(after);
}

function upsertStatus(state: RobotState): void {
  upsertSearchAttributes([
    { key: searchAttributes.online, value: state.online },
    { key: searchAttributes.fleetStatus, value: state.fleetStatus },
  ]);
}

/** Applies DriveU reports in DriveU time order and records the result on the device when it changed. */
async function recordDriveu(serial: string, current: DriveuState | null, reports: DriveuReport[]): Promise<DriveuState | null> {
  const next = reports.reduce(applyDriveuReport, current);
  if (next !== null && next !== current) await recordDriveuStatus(serial, next);
  return next;
}
