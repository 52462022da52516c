import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { HeartbeatPipeline } from './heartbeat-pipeline';

/**
 * Heartbeats from the SQS queue an AWS IoT Rule fills (seed 001 Phase 1): `receivers` long-polling
 * loops take up to 10 messages each into the pipeline and delete them, in batches of 10, only once
 * the pipeline's batch that holds them is written. A message not deleted (a crash, a failed write)
 * comes back after the queue's visibility timeout; taking one twice changes nothing. A malformed
 * one is kept as rejected and deleted like the others. The receipt time is when this worker received
 * it, as on MQTT: a backlog drained late counts as heard now, so the offline sweep and the
 * forwarding rule's silence agree (with SentTimestamp a lagging ingest took robots offline for good).
 * A full pipeline stops the receivers, so the excess waits in the queue.
 */

export type SqsSource = { close(): Promise<void> };

export function startSqsSource(opts: {
  sqs: SQSClient;
  queueUrl: string;
  receivers: number;
  pipeline: HeartbeatPipeline;
  onError?: (error: Error) => void;
  /** Long-poll wait (1..20 s). */
  waitTimeSeconds?: number;
}): SqsSource {
  const abort = new AbortController();
  // A long poll in flight is left behind on close: what it would bring comes back after the visibility timeout.
  const aborted = new Promise<{ Messages?: undefined }>((resolve) => abort.signal.addEventListener('abort', () => resolve({})));
  let received: string[] = [];
  const deleting = new Set<Promise<void>>();
  opts.pipeline.setAckSource(() => {
    const handles = received;
    received = [];
    return () => {
      const done = deleteAll(opts, handles).finally(() => deleting.delete(done));
      deleting.add(done);
    };
  });

  const receive = async () => {
    while (!abort.signal.aborted) {
      try {
        await opts.pipeline.whenRoom();
        const { Messages = [] } = await Promise.race([
          opts.sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: opts.queueUrl,
              MaxNumberOfMessages: 10,
              WaitTimeSeconds: opts.waitTimeSeconds ?? 20,
            }),
            { abortSignal: abort.signal },
          ),
          aborted,
        ]);
        if (abort.signal.aborted) return;
        for (const m of Messages) {
          received.push(m.ReceiptHandle!);
          opts.pipeline.acceptRuleMessage(m.Body ?? '', Date.now());
        }
      } catch (error) {
        if (abort.signal.aborted) return;
        opts.onError?.(error as Error);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  };
  const loops = Array.from({ length: Math.max(1, opts.receivers) }, receive);
  return {
    close: async () => {
      abort.abort();
      await Promise.all(loops);
      await Promise.all(deleting);
    },
  };
}

/** DeleteMessageBatch, 10 a call; a failed entry simply comes back later (harmless). */
async function deleteAll(opts: { sqs: SQSClient; queueUrl: string; onError?: (error: Error) => void }, handles: string[]): Promise<void> {
  for (let i = 0; i < handles.length; i += 10) {
    const entries = handles.slice(i, i + 10).map((ReceiptHandle, k) => ({ Id: String(k), ReceiptHandle }));
    try {
      const result = await opts.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: opts.queueUrl, Entries: entries }));
      if (result.Failed?.length) opts.onError?.(new Error(`SQS kept ${result.Failed.length} messages it could not delete: ${result.Failed[0].Message}`));
    } catch (error) {
      opts.onError?.(error as Error);
    }
  }
}
