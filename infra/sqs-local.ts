import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { createSqsClient } from './sqs';

/**
 * A local SQS-compatible server for npm start, the tests and the benchmark: ElasticMQ from Maven
 * Central on the JVM (scripts/sqs.sh installs it into .tools/sqs; scripts/elasticmq.conf creates the
 * standard queue `robot-heartbeats`, 30 s visibility timeout, in memory). moto's server, the other
 * candidate, fell behind the fleet's rate (docs/performance.md).
 */

export const LOCAL_HEARTBEAT_QUEUE = 'robot-heartbeats';
const root = resolve(__dirname, '..');

export type LocalSqs = { endpoint: string; queueUrl: string; process: ChildProcess; stop(): Promise<void> };

export async function startLocalSqs(opts: { port: number }): Promise<LocalSqs> {
  const install = spawnSync('bash', [resolve(root, 'scripts', 'sqs.sh'), resolve(root, '.tools', 'sqs')], { encoding: 'utf8' });
  if (install.status !== 0) throw new Error(`scripts/sqs.sh failed: ${install.stderr.trim().split('\n').pop()}`);
  const command = install.stdout.trim();
  // Its own process group: a Ctrl-C meant for us must not stop it before the ingest has drained.
  const child = spawn('bash', ['-c', `exec ${command}`], { env: { ...process.env, SQS_PORT: String(opts.port) }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => (tail = (tail + chunk).slice(-4000)));
  const stopOnExit = () => child.kill('SIGTERM');
  process.once('exit', stopOnExit);
  const endpoint = `http://127.0.0.1:${opts.port}`;
  const sqs = createSqsClient({ region: 'us-east-1', endpoint });
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`the local SQS server exited (${child.exitCode}): ${tail}`);
      try {
        const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: LOCAL_HEARTBEAT_QUEUE }));
        return {
          endpoint,
          queueUrl: QueueUrl!,
          process: child,
          stop: async () => {
            process.removeListener('exit', stopOnExit);
            if (child.exitCode !== null) return;
            const exited = new Promise((r) => child.once('exit', r));
            child.kill('SIGTERM');
            // Its queues are in memory: nothing to save, and it waits out open long polls (20 s).
            const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
            await exited;
            clearTimeout(timer);
          },
        };
      } catch (error) {
        if (i > 600) throw new Error(`the local SQS server did not answer: ${tail}`, { cause: error });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    sqs.destroy();
  }
}
