import { proxySinks, type ActivityInput, type LocalActivityInput, type Next, type Sinks, type WorkflowInterceptorsFactory, type WorkflowOutboundCallsInterceptor } from '@temporalio/workflow';

/**
 * A workflow interceptor for replay tests (bundled with the workflows by
 * test/unit/workflow-replay.test.ts): every activity the workflow code schedules, with its
 * arguments, goes out through the `activityInputs` sink, so a test sees what the current code
 * would have sent where a recorded history says what the old code sent.
 */

export interface ActivityInputSinks extends Sinks {
  activityInputs: { scheduled(activityType: string, args: unknown[]): void };
}

const { activityInputs } = proxySinks<ActivityInputSinks>();

class RecordActivityInputs implements WorkflowOutboundCallsInterceptor {
  scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>): Promise<unknown> {
    activityInputs.scheduled(input.activityType, input.args);
    return next(input);
  }

  scheduleLocalActivity(input: LocalActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>): Promise<unknown> {
    activityInputs.scheduled(input.activityType, input.args);
    return next(input);
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({ outbound: [new RecordActivityInputs()] });
