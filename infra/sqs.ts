import { SQSClient } from '@aws-sdk/client-sqs';

/** An SQS client: AWS's, or another SQS-compatible endpoint (SQS_ENDPOINT; the local server needs no real credentials). */
export function createSqsClient(opts: { region: string; endpoint?: string }): SQSClient {
  return new SQSClient({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
  });
}
