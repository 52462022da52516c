import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { connect, type ChannelModel } from 'amqplib';
import { EXCHANGE_TYPE } from '../../outbox/messages';

/** A local RabbitMQ as tests and the soak use it (scripts/rabbitmq.sh starts one): a consumer, and `rabbitmqctl`. */

const run = promisify(execFile);

/** Debian's rabbitmqctl, when RabbitMQ runs on this machine. */
export const RABBITMQCTL = ['/usr/sbin/rabbitmqctl', '/usr/lib/rabbitmq/bin/rabbitmqctl'].find((p) => existsSync(p));

/** `rabbitmqctl <command>` on the node RABBITMQ_NODENAME names (default: the machine's one node). */
export async function rabbitmqctl(command: 'stop_app' | 'start_app'): Promise<void> {
  if (!RABBITMQCTL) throw new Error('rabbitmqctl is not installed: run scripts/rabbitmq.sh');
  const node = process.env.RABBITMQ_NODENAME;
  await run(RABBITMQCTL, [...(node ? ['-n', node] : []), command]);
}

export type Delivery = {
  messageId: string;
  routingKey: string;
  body: { id: string; type: string; serial: string | null; occurredAt: string; data: unknown };
  deliveryMode?: number;
  contentType?: string;
  headers: Record<string, unknown>;
  /** When it arrived (Date.now()), and whether RabbitMQ delivered it before (requeued, unacknowledged). */
  receivedAt: number;
  redelivered: boolean;
};

/** A consumer on its own durable queue that reconnects after the broker comes back, acking what it got. */
export class AmqpConsumer {
  readonly deliveries: Delivery[] = [];
  private connection: ChannelModel | null = null;
  private stopped = false;

  constructor(
    private readonly amqpUrl: string,
    readonly queue: string,
    private readonly exchange: string,
    private readonly patterns: string[],
  ) {}

  async start(): Promise<this> {
    await this.connect();
    return this;
  }

  /** Message ids in order of first arrival: the deduplicated stream. */
  distinct(serial?: string): string[] {
    return [...new Set((serial === undefined ? this.deliveries : this.of(serial)).map((d) => d.messageId))];
  }

  of(serial: string): Delivery[] {
    return this.deliveries.filter((d) => d.body.serial === serial);
  }

  /** Disconnects and deletes its queue (and the exchange, when asked). */
  async stop(opts: { deleteExchange?: boolean } = {}): Promise<void> {
    this.stopped = true;
    await this.connection?.close().catch(() => undefined);
    const connection = await connect(this.amqpUrl);
    const channel = await connection.createChannel();
    await channel.deleteQueue(this.queue);
    if (opts.deleteExchange) await channel.deleteExchange(this.exchange);
    await connection.close();
  }

  private async connect(): Promise<void> {
    const connection = await connect(this.amqpUrl);
    connection.on('error', () => undefined);
    connection.on('close', () => this.reconnectSoon());
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    await channel.assertExchange(this.exchange, EXCHANGE_TYPE, { durable: true });
    await channel.assertQueue(this.queue, { durable: true });
    for (const pattern of this.patterns) await channel.bindQueue(this.queue, this.exchange, pattern);
    await channel.prefetch(500);
    await channel.consume(this.queue, (message) => {
      if (!message) return;
      this.deliveries.push({
        messageId: message.properties.messageId,
        routingKey: message.fields.routingKey,
        body: JSON.parse(message.content.toString()),
        deliveryMode: message.properties.deliveryMode,
        contentType: message.properties.contentType,
        headers: message.properties.headers ?? {},
        receivedAt: Date.now(),
        redelivered: message.fields.redelivered,
      });
      channel.ack(message);
    });
    this.connection = connection;
  }

  private reconnectSoon(): void {
    if (this.stopped) return;
    setTimeout(() => {
      if (this.stopped) return;
      this.connect().catch(() => this.reconnectSoon());
    }, 500);
  }
}
