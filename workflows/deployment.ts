import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
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
  RolloutPlanError,
  type Components,
  type DeploymentView,
  type DeviceProgress,
  type RolloutPolicy,
  type RolloutStatus,
  type StagePlan,
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

type Outcome = 'done' | 'stopped';

export async function deploymentWorkflow(input: DeploymentWorkflowInput): Promise<DeploymentView> {
  const { deploymentId, rollout } = input;
  const target = parseTargetArn(input.targetArn);
  const eventSerial = target?.kind === 'thing' ? target.name : null;
  const deadlineAt = Date.now() + rollout.deadlineSeconds * 1000;
  let cancelReason: string | null = null;
  let view = pendingDeploymentView(input, new Date().toISOString(), 1);

  setHandler(deploymentProgressQuery, () => view);
  setHandler(cancelDeploymentSignal, ({ reason }) => {
    if (cancelReason !== null || view.status === 'SUCCEEDED' || view.status === 'FAILED' || view.status === 'CANCELLED') return;
    cancelReason = reason?.trim() || 'cancelled on request';
    view = { ...view, cancelRequested: true };
  });

  const now = () => new Date().toISOString();
  function patched(patch: Partial<DeploymentView>): DeploymentView {
    const next = { ...view, ...patch };
    return { ...next, deviceCounts: deviceCounts(next.devices), failurePercent: failurePercent(next.devices), updatedAt: now(), version: view.version + 1 };
  }
  const change = (patch: Partial<DeploymentView>) => void (view = patched(patch));
  const setDevices = (fn: (d: DeviceProgress) => DeviceProgress) => change({ devices: view.devices.map(fn) });

  async function save(drafts: Omit<EventDraft, 'serial' | 'occurredAt'>[] = [], saved = view): Promise<void> {
    const events: DomainEvent[] = drafts.map((d) => ({ ...d, id: uuid4(), serial: eventSerial, occurredAt: now() }));
    await recordDeployment({ view: saved, events });
  }

  /** Runs an activity unless (or until) a cancel request or the deadline comes first: then null. */
  async function unlessStopped<T>(fn: () => Promise<T>): Promise<{ value: T } | null> {
    const remaining = deadlineAt - Date.now();
    if (cancelReason !== null || remaining <= 0) return null;
    let outcome: { value: T } | { error: unknown } | undefined;
    const scope = new CancellationScope();
    const running = scope.run(fn).then(
      (value) => void (outcome = { value }),
      (error) => void (outcome = { error }),
    );
    await condition(() => outcome !== undefined || cancelReason !== null, remaining);
    if (outcome === undefined) {
      scope.cancel();
      await running;
      return null;
    }
    if ('error' in outcome) throw outcome.error;
    return outcome;
  }

  function applyProgress(result: ProgressResult): void {
    const at = now();
    const statusById = new Map(result.deployments.map((d) => [d.greengrassDeploymentId, d.status]));
    const greengrassDeployments = view.greengrassDeployments.map((g) => ({ ...g, status: statusById.get(g.greengrassDeploymentId) ?? g.status }));
    const over = new Map(greengrassDeployments.filter((g) => isGreengrassDeploymentOver(g.status)).map((g) => [g.greengrassDeploymentId, g.status]));
    // A device that never received a deployment Greengrass has ended will never receive it.
    const devices = applyDeviceUpdates(view.devices, result.devices, at).map((d): DeviceProgress => {
      const ended = d.greengrassDeploymentId === null ? undefined : over.get(d.greengrassDeploymentId);
      return d.status === 'PENDING' && ended ? { ...d, status: 'CANCELLED', reason: `Greengrass deployment ${d.greengrassDeploymentId} is ${ended}`, updatedAt: at } : d;
    });
    change({ devices, greengrassDeployments });
  }

  async function finish(status: Exclude<RolloutStatus, 'PENDING' | 'IN_PROGRESS'>, reason: string | null): Promise<DeploymentView> {
    // The query shows the end only once it and its event are stored, so whoever sees it can read the event.
    const done = patched({ status, reason, phase: 'DONE', completedAt: now() });
    const type = status === 'SUCCEEDED' ? 'Deployment.Succeeded' : status === 'FAILED' ? 'Deployment.Failed' : 'Deployment.Cancelled';
    await save(
      [{ type, data: { deploymentId, targetArn: input.targetArn, reason, failurePercent: done.failurePercent, deviceCounts: done.deviceCounts } }],
      done,
    );
    view = done;
    return view;
  }

  /** Cancels every Greengrass deployment still active, records where each device got to, and ends. */
  async function stop(status: 'FAILED' | 'CANCELLED', reason: string): Promise<Outcome> {
    for (const g of view.greengrassDeployments.filter((x) => x.status === 'ACTIVE')) {
      try {
        const after = await greengrass.cancelGreengrassDeployment(g.greengrassDeploymentId);
        change({ greengrassDeployments: view.greengrassDeployments.map((x) => (x === g ? { ...x, status: after } : x)) });
      } catch (error) {
        reason = `${reason}; cancelling Greengrass deployment ${g.greengrassDeploymentId} failed: ${messageOf(error)}`;
      }
    }
    const open = view.devices.filter((d) => !isTerminal(d.status) && d.greengrassDeploymentId !== null);
    if (open.length > 0) {
      try {
        applyProgress(await greengrass.pollRolloutProgress({ devices: open.map(progressInput), deployments: [], waitForChange: false }));
      } catch {
        // The last known states stand.
      }
    }
    change({ devices: closeOutDevices(view.devices, reason, now()) });
    await finish(status, reason);
    return 'stopped';
  }

  const stopOnRequestOrDeadline = () =>
    cancelReason !== null ? stop('CANCELLED', cancelReason) : stop('FAILED', `deadline of ${rollout.deadlineSeconds} s passed before the rollout finished`);

  async function deployStage(stage: StagePlan): Promise<void> {
    change({ phase: stage.name });
    for (const planned of stage.deployments) {
      const created = await greengrass.createGreengrassDeployment({ deploymentId, stage: stage.name, targetArn: planned.targetArn, components: input.components });
      const ref = { ...created, targetArn: planned.targetArn, stage: stage.name, status: 'ACTIVE', createdAt: now() };
      change({ greengrassDeployments: [...view.greengrassDeployments, ref] });
      setDevices((d) => (planned.serials.includes(d.serial) && d.stage === stage.name ? { ...d, greengrassDeploymentId: created.greengrassDeploymentId, updatedAt: now() } : d));
    }
    await save();
  }

  async function watchStage(stage: StagePlan): Promise<Outcome> {
    for (;;) {
      const mine = view.devices.filter((d) => d.stage === stage.name);
      const failedCanary = stage.name === 'CANARY' ? mine.find((d) => isFailure(d.status)) : undefined;
      if (failedCanary) return stop('FAILED', `canary ${failedCanary.serial} ${failedCanary.status.toLowerCase()}: ${failedCanary.reason ?? 'no reason given'}`);
      if (stage.name === 'ROLLOUT' && exceedsFailureBudget(view.devices, rollout.maxFailurePercent)) {
        return stop('FAILED', `${view.failurePercent.toFixed(1)}% of devices failed, more than maxFailurePercent ${rollout.maxFailurePercent}`);
      }
      const open = mine.filter((d) => !isTerminal(d.status));
      if (open.length === 0) return 'done';
      const ids = new Set(open.map((d) => d.greengrassDeploymentId));
      const deployments = view.greengrassDeployments
        .filter((g) => ids.has(g.greengrassDeploymentId))
        .map((g) => ({ greengrassDeploymentId: g.greengrassDeploymentId, status: g.status }));
      const polled = await unlessStopped(() => pollRolloutProgress({ devices: open.map(progressInput), deployments, waitForChange: true }));
      if (polled === null) return stopOnRequestOrDeadline();
      applyProgress(polled.value);
      await save();
    }
  }

  async function soakCanaries(stage: StagePlan): Promise<Outcome> {
    change({ phase: 'SOAK' });
    await save();
    const soakEnd = Date.now() + rollout.soakSeconds * 1000;
    const every = Math.min(Math.max((rollout.soakSeconds * 1000) / 6, 1000), 30_000);
    for (;;) {
      const health = await unlessStopped(() => greengrass.checkCanaryHealth({ serials: stage.serials, components: input.components }));
      if (health === null) return stopOnRequestOrDeadline();
      const sick = health.value.filter((h) => h.problems.length > 0);
      if (sick.length > 0) {
        const at = now();
        const problems = new Map(sick.map((h) => [h.serial, `unhealthy during soak: ${h.problems.join('; ')}`]));
        setDevices((d) => (d.stage === 'CANARY' && problems.has(d.serial) ? { ...d, status: 'FAILED', reason: problems.get(d.serial)!, updatedAt: at } : d));
        return stop('FAILED', `canary ${sick[0].serial} ${problems.get(sick[0].serial)}`);
      }
      const left = soakEnd - Date.now();
      if (left <= 0) return 'done';
      const wait = Math.min(every, left, deadlineAt - Date.now());
      if (wait <= 0 || (await condition(() => cancelReason !== null, wait))) return stopOnRequestOrDeadline();
    }
  }

  try {
    change({ status: 'IN_PROGRESS' });
    await save();
    if (target === null) return await finish('FAILED', `targetArn ${input.targetArn} is not a thing or thing group ARN`);
    const members = await greengrass.resolveTargetDevices(input.targetArn);
    let stages: StagePlan[];
    try {
      stages = planStages(target, members, rollout);
    } catch (error) {
      if (error instanceof RolloutPlanError) return await finish('FAILED', error.message);
      throw error;
    }
    const devices = stages.flatMap((s) =>
      s.serials.map((serial): DeviceProgress => ({ serial, stage: s.name, status: 'PENDING', greengrassStatus: null, reason: null, greengrassDeploymentId: null, updatedAt: null })),
    );
    change({ devices });
    await save([
      {
        type: 'Deployment.Started',
        data: {
          deploymentId,
          targetArn: input.targetArn,
          components: Object.fromEntries(Object.entries(input.components).map(([name, c]) => [name, c.componentVersion])),
          deviceCount: devices.length,
          canaries: stages.find((s) => s.name === 'CANARY')?.serials ?? [],
        },
      },
    ]);

    for (const stage of stages) {
      if (cancelReason !== null || Date.now() >= deadlineAt) {
        await stopOnRequestOrDeadline();
        return view;
      }
      await deployStage(stage);
      if ((await watchStage(stage)) === 'stopped') return view;
      if (stage.name === 'CANARY' && (await soakCanaries(stage)) === 'stopped') return view;
      const mine = view.devices.filter((d) => d.stage === stage.name);
      await save([
        {
          type: 'Deployment.StageCompleted',
          data: {
            deploymentId,
            stage: stage.name,
            devices: mine.length,
            succeeded: mine.filter((d) => d.status === 'SUCCEEDED').length,
            failed: mine.filter((d) => isFailure(d.status)).length,
          },
        },
      ]);
    }
    const failed = view.devices.filter((d) => isFailure(d.status)).length;
    return await finish('SUCCEEDED', failed > 0 ? `${failed} device(s) failed, within maxFailurePercent ${rollout.maxFailurePercent}` : null);
  } catch (error) {
    if (isCancellation(error)) {
      await CancellationScope.nonCancellable(() => stop('CANCELLED', 'the deployment workflow was cancelled'));
      throw error;
    }
    await stop('FAILED', messageOf(error));
    return view;
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
