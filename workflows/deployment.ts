import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { ProgressResult } from '../activities/greengrass';
import type { DomainEvent, EventDraft } from '../domain/events';
import {
  applyDeviceUpdates,
  closeOutDevices,
  deviceCounts,
  exceedsFailureBudget,
  failurePercent,
  isFailure,
  isGreengrassDeploymentOver,
  isTerminal,
  parseTargetArn,
  pendingDeploymentView,
  planStages,
  rolloutEndEvent,
  rolloutEventType,
  RolloutPlanError,
  type Components,
  type DeploymentView,
  type DeviceProgress,
  type RolloutEvent,
  type RolloutEventNames,
  type RolloutPolicy,
  type RolloutStatus,
  type StagePlan,
  type Target,
} from '../domain/rollout';
import { timing } from '../temporal.config';

/**
 * One Greengrass rollout (`deployment:<deploymentId>`): resolve the target's core devices,
 * deploy to the canaries, soak them (Greengrass components running, robot online without a
 * critical fault), then deploy to the rest; stop when failures pass `maxFailurePercent`, on the
 * deadline, or on `cancelDeployment`, cancelling what was created in Greengrass. The query
 * `deploymentProgress` answers the live view; every change is also written to the projection.
 */

export type DeploymentWorkflowInput = {
  deploymentId: string;
  requestId: string | null;
  targetArn: string;
  components: Components;
  rollout: RolloutPolicy;
  createdAt: string;
};

export const deploymentProgressQuery = defineQuery<DeploymentView>('deploymentProgress');
export const cancelDeploymentSignal = defineSignal<[{ reason?: string }]>('cancelDeployment');

type Activities = ReturnType<typeof createActivities>;
const greengrass = proxyActivities<Activities>(timing.greengrassActivity);
const { pollRolloutProgress } = proxyActivities<Activities>(timing.greengrassPollActivity);
const { recordDeployment } = proxyActivities<Activities>(timing.projectionActivity);

export async function deploymentWorkflow(input: DeploymentWorkflowInput): Promise<DeploymentView> {
  const rollout = new Rollout(input);
  setHandler(deploymentProgressQuery, () => rollout.view);
  setHandler(cancelDeploymentSignal, ({ reason }) => rollout.requestCancel(reason));

  try {
    const { canary, rest } = await startRollout(rollout);
    if (canary) {
      await deployCanary(rollout, canary);
      await soak(rollout, canary);
      await stageCompleted(rollout, canary);
    }
    if (rest) {
      await deployTheRest(rollout, rest);
      await stageCompleted(rollout, rest);
    }
    return await succeed(rollout);
  } catch (error) {
    if (error instanceof RolloutEnded) return rollout.view;
    if (isCancellation(error)) {
      await CancellationScope.nonCancellable(() => rollout.stop('CANCELLED', 'the deployment workflow was cancelled'));
      throw error;
    }
    await rollout.stop('FAILED', messageOf(error));
    return rollout.view;
  }
}

// --- The stages, in the order the story runs them -------------------------------------------------

/** Resolves the target's core devices and plans the canary and the rest; a target that cannot be planned fails here. */
async function startRollout(r: Rollout): Promise<{ canary?: StagePlan; rest?: StagePlan }> {
  const { input, target } = r;
  r.change({ status: 'IN_PROGRESS' });
  await r.save();
  if (target === null) return r.endBeforeStart(`targetArn ${input.targetArn} is not a thing or thing group ARN`);
  const members = await greengrass.resolveTargetDevices(input.targetArn);
  let stages: StagePlan[];
  try {
    stages = planStages(target, members, input.rollout);
  } catch (error) {
    if (error instanceof RolloutPlanError) return r.endBeforeStart(error.message);
    throw error;
  }
  const devices = stages.flatMap((s) =>
    s.serials.map((serial): DeviceProgress => ({ serial, stage: s.name, status: 'PENDING', greengrassStatus: null, reason: null, greengrassDeploymentId: null, updatedAt: null })),
  );
  r.change({ devices });
  const canary = stages.find((s) => s.name === 'CANARY');
  await r.save([
    {
      type: r.eventType('Started'),
      data: {
        deploymentId: input.deploymentId,
        targetArn: input.targetArn,
        components: Object.fromEntries(Object.entries(input.components).map(([name, c]) => [name, c.componentVersion])),
        deviceCount: devices.length,
        canaries: canary?.serials ?? [],
      },
    },
  ]);
  return { canary, rest: stages.find((s) => s.name === 'ROLLOUT') };
}

/** Deploys to each canary and waits for them all; one canary failing fails the rollout. */
async function deployCanary(r: Rollout, canary: StagePlan): Promise<void> {
  await deploy(r, canary);
  await watch(r, canary, () => {
    const failed = r.devicesOf(canary).find((d) => isFailure(d.status));
    return failed ? `canary ${failed.serial} ${failed.status.toLowerCase()}: ${failed.reason ?? 'no reason given'}` : null;
  });
}

/** Checks the canaries' health every sixth of the soak (1 to 30 s) until it ends; a sick canary fails the rollout. */
async function soak(r: Rollout, canary: StagePlan): Promise<void> {
  const { soakSeconds } = r.input.rollout;
  r.change({ phase: 'SOAK' });
  await r.save();
  const soakEnd = Date.now() + soakSeconds * 1000;
  const every = Math.min(Math.max((soakSeconds * 1000) / 6, 1000), 30_000);
  for (;;) {
    const health = await r.unlessStopped(() => greengrass.checkCanaryHealth({ serials: canary.serials, components: r.input.components }));
    if (health === null) return r.endOnRequestOrDeadline();
    const sick = health.value.filter((h) => h.problems.length > 0);
    if (sick.length > 0) {
      const at = r.now();
      const problems = new Map(sick.map((h) => [h.serial, `unhealthy during soak: ${h.problems.join('; ')}`]));
      r.setDevices((d) => (d.stage === 'CANARY' && problems.has(d.serial) ? { ...d, status: 'FAILED', reason: problems.get(d.serial)!, updatedAt: at } : d));
      return r.end('FAILED', `canary ${sick[0].serial} ${problems.get(sick[0].serial)}`);
    }
    const left = soakEnd - Date.now();
    if (left <= 0) return;
    const wait = Math.min(every, left, r.deadlineAt - Date.now());
    if (wait <= 0 || (await condition(() => r.cancelReason !== null, wait))) return r.endOnRequestOrDeadline();
  }
}

/** Deploys to the whole target and waits for its devices; failures past `maxFailurePercent` fail the rollout. */
async function deployTheRest(r: Rollout, rest: StagePlan): Promise<void> {
  const { maxFailurePercent } = r.input.rollout;
  await deploy(r, rest);
  await watch(r, rest, () =>
    exceedsFailureBudget(r.view.devices, maxFailurePercent) ? `${r.view.failurePercent.toFixed(1)}% of devices failed, more than maxFailurePercent ${maxFailurePercent}` : null,
  );
}

async function stageCompleted(r: Rollout, stage: StagePlan): Promise<void> {
  const mine = r.devicesOf(stage);
  await r.save([
    {
      type: r.eventType('StageCompleted'),
      data: {
        deploymentId: r.input.deploymentId,
        stage: stage.name,
        devices: mine.length,
        succeeded: mine.filter((d) => d.status === 'SUCCEEDED').length,
        failed: mine.filter((d) => isFailure(d.status)).length,
      },
    },
  ]);
}

async function succeed(r: Rollout): Promise<DeploymentView> {
  const failed = r.view.devices.filter((d) => isFailure(d.status)).length;
  return r.finish('SUCCEEDED', failed > 0 ? `${failed} device(s) failed, within maxFailurePercent ${r.input.rollout.maxFailurePercent}` : null);
}

// --- What the stages share -------------------------------------------------------------------------

/** Creates the stage's Greengrass deployments, unless a cancel request or the deadline came first. */
async function deploy(r: Rollout, stage: StagePlan): Promise<void> {
  if (r.cancelReason !== null || Date.now() >= r.deadlineAt) return r.endOnRequestOrDeadline();
  r.change({ phase: stage.name });
  for (const planned of stage.deployments) {
    const created = await greengrass.createGreengrassDeployment({ deploymentId: r.input.deploymentId, stage: stage.name, targetArn: planned.targetArn, components: r.input.components });
    const ref = { ...created, targetArn: planned.targetArn, stage: stage.name, status: 'ACTIVE', createdAt: r.now() };
    r.change({ greengrassDeployments: [...r.view.greengrassDeployments, ref] });
    r.setDevices((d) => (planned.serials.includes(d.serial) && d.stage === stage.name ? { ...d, greengrassDeploymentId: created.greengrassDeploymentId, updatedAt: r.now() } : d));
  }
  await r.save();
}

/** Polls Greengrass until every device of the stage has ended; `tooManyFailures` names a reason to fail the rollout. */
async function watch(r: Rollout, stage: StagePlan, tooManyFailures: () => string | null): Promise<void> {
  for (;;) {
    const failure = tooManyFailures();
    if (failure !== null) return r.end('FAILED', failure);
    const open = r.devicesOf(stage).filter((d) => !isTerminal(d.status));
    if (open.length === 0) return;
    const ids = new Set(open.map((d) => d.greengrassDeploymentId));
    const deployments = r.view.greengrassDeployments
      .filter((g) => ids.has(g.greengrassDeploymentId))
      .map((g) => ({ greengrassDeploymentId: g.greengrassDeploymentId, status: g.status }));
    const polled = await r.unlessStopped(() => pollRolloutProgress({ devices: open.map(progressInput), deployments, waitForChange: true }));
    if (polled === null) return r.endOnRequestOrDeadline();
    r.applyProgress(polled.value);
    await r.save();
  }
}

/** Thrown once the rollout's end is stored, so that the story goes no further. */
class RolloutEnded extends Error {}

/** The rollout's live view, its cancel request and deadline, and how it is saved and stopped. */
class Rollout {
  readonly target: Target | null;
  readonly deadlineAt: number;
  view: DeploymentView;
  cancelReason: string | null = null;
  private readonly eventSerial: string | null;
  /** Decided as the workflow starts, once: a rollout started before the rename keeps Deployment.* to its end. */
  private readonly eventNames: RolloutEventNames = patched('rollout-event-names') ? 'Rollout' : 'Deployment';

  constructor(readonly input: DeploymentWorkflowInput) {
    this.target = parseTargetArn(input.targetArn);
    this.eventSerial = this.target?.kind === 'thing' ? this.target.name : null;
    this.deadlineAt = Date.now() + input.rollout.deadlineSeconds * 1000;
    this.view = pendingDeploymentView(input, new Date().toISOString(), 1);
  }

  now(): string {
    return new Date().toISOString();
  }

  eventType(event: RolloutEvent): string {
    return rolloutEventType(this.eventNames, event);
  }

  requestCancel(reason: string | undefined): void {
    const { status } = this.view;
    if (this.cancelReason !== null || status === 'SUCCEEDED' || status === 'FAILED' || status === 'CANCELLED') return;
    this.cancelReason = reason?.trim() || 'cancelled on request';
    this.view = { ...this.view, cancelRequested: true };
  }

  devicesOf(stage: StagePlan): DeviceProgress[] {
    return this.view.devices.filter((d) => d.stage === stage.name);
  }

  withChange(patch: Partial<DeploymentView>): DeploymentView {
    const next = { ...this.view, ...patch };
    return { ...next, deviceCounts: deviceCounts(next.devices), failurePercent: failurePercent(next.devices), updatedAt: this.now(), version: this.view.version + 1 };
  }

  change(patch: Partial<DeploymentView>): void {
    this.view = this.withChange(patch);
  }

  setDevices(fn: (d: DeviceProgress) => DeviceProgress): void {
    this.change({ devices: this.view.devices.map(fn) });
  }

  async save(drafts: Omit<EventDraft, 'serial' | 'occurredAt'>[] = [], saved = this.view): Promise<void> {
    const events: DomainEvent[] = drafts.map((d) => ({ ...d, id: uuid4(), serial: this.eventSerial, occurredAt: this.now() }));
    await recordDeployment({ view: saved, events });
  }

  /** Runs an activity unless (or until) a cancel request or the deadline comes first: then null. */
  async unlessStopped<T>(fn: () => Promise<T>): Promise<{ value: T } | null> {
    const remaining = this.deadlineAt - Date.now();
    if (this.cancelReason !== null || remaining <= 0) return null;
    let outcome: { value: T } | { error: unknown } | undefined;
    const scope = new CancellationScope();
    const running = scope.run(fn).then(
      (value) => void (outcome = { value }),
      (error) => void (outcome = { error }),
    );
    await condition(() => outcome !== undefined || this.cancelReason !== null, remaining);
    if (outcome === undefined) {
      scope.cancel();
      await running;
      return null;
    }
    if ('error' in outcome) throw outcome.error;
    return outcome;
  }

  applyProgress(result: ProgressResult): void {
    const at = this.now();
    const statusById = new Map(result.deployments.map((d) => [d.greengrassDeploymentId, d.status]));
    const greengrassDeployments = this.view.greengrassDeployments.map((g) => ({ ...g, status: statusById.get(g.greengrassDeploymentId) ?? g.status }));
    const over = new Map(greengrassDeployments.filter((g) => isGreengrassDeploymentOver(g.status)).map((g) => [g.greengrassDeploymentId, g.status]));
    // A device that never received a deployment Greengrass has ended will never receive it.
    const devices = applyDeviceUpdates(this.view.devices, result.devices, at).map((d): DeviceProgress => {
      const ended = d.greengrassDeploymentId === null ? undefined : over.get(d.greengrassDeploymentId);
      return d.status === 'PENDING' && ended ? { ...d, status: 'CANCELLED', reason: `Greengrass deployment ${d.greengrassDeploymentId} is ${ended}`, updatedAt: at } : d;
    });
    this.change({ devices, greengrassDeployments });
  }

  async finish(status: Exclude<RolloutStatus, 'PENDING' | 'IN_PROGRESS'>, reason: string | null): Promise<DeploymentView> {
    // The query shows the end only once it and its event are stored, so whoever sees it can read the event.
    const done = this.withChange({ status, reason, phase: 'DONE', completedAt: this.now() });
    await this.save(
      [{ type: this.eventType(rolloutEndEvent(status)), data: { deploymentId: this.input.deploymentId, targetArn: this.input.targetArn, reason, failurePercent: done.failurePercent, deviceCounts: done.deviceCounts } }],
      done,
    );
    this.view = done;
    return this.view;
  }

  /** Cancels every Greengrass deployment still active, records where each device got to, and ends. */
  async stop(status: 'FAILED' | 'CANCELLED', reason: string): Promise<void> {
    for (const g of this.view.greengrassDeployments.filter((x) => x.status === 'ACTIVE')) {
      try {
        const after = await greengrass.cancelGreengrassDeployment(g.greengrassDeploymentId);
        this.change({ greengrassDeployments: this.view.greengrassDeployments.map((x) => (x === g ? { ...x, status: after } : x)) });
      } catch (error) {
        reason = `${reason}; cancelling Greengrass deployment ${g.greengrassDeploymentId} failed: ${messageOf(error)}`;
      }
    }
    const open = this.view.devices.filter((d) => !isTerminal(d.status) && d.greengrassDeploymentId !== null);
    if (open.length > 0) {
      try {
        this.applyProgress(await greengrass.pollRolloutProgress({ devices: open.map(progressInput), deployments: [], waitForChange: false }));
      } catch {
        // The last known states stand.
      }
    }
    this.change({ devices: closeOutDevices(this.view.devices, reason, this.now()) });
    await this.finish(status, reason);
  }

  /** Stops the rollout and ends the story there. */
  async end(status: 'FAILED' | 'CANCELLED', reason: string): Promise<never> {
    await this.stop(status, reason);
    throw new RolloutEnded();
  }

  endOnRequestOrDeadline(): Promise<never> {
    const { deadlineSeconds } = this.input.rollout;
    return this.cancelReason !== null ? this.end('CANCELLED', this.cancelReason) : this.end('FAILED', `deadline of ${deadlineSeconds} s passed before the rollout finished`);
  }

  /** Fails a rollout before anything was deployed: there is nothing to cancel. */
  async endBeforeStart(reason: string): Promise<never> {
    await this.finish('FAILED', reason);
    throw new RolloutEnded();
  }
}

const progressInput = (d: DeviceProgress) => ({
  serial: d.serial,
  greengrassDeploymentId: d.greengrassDeploymentId!,
  greengrassStatus: d.greengrassStatus,
  reason: d.reason,
});

/** The engineer-facing reason: an activity's own message rather than "Activity task failed". */
function messageOf(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return messageOf(error.cause);
  if (error instanceof ApplicationFailure || error instanceof Error) return error.message;
  return String(error);
}
