import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { AedesPacket } from 'aedes-packet';

/**
 * aedes' in-memory persistence with the outgoing queue indexed. The stock one keeps each client's
 * unacknowledged QoS 1 messages in an array and scans it from the start for every delivery
 * (`outgoingUpdate`) and every PUBACK (`outgoingClearMessageId`), so once a subscriber falls behind,
 * every message costs time in proportion to the backlog and the backlog runs away (docs/performance.md).
 * Here a client's queue is a Map in delivery
 * order, keyed by the broker's packet identity, beside an index by MQTT messageId: each step is
 * O(1). Everything else is aedes-persistence 11's own code.
 */

const load = createRequire(__filename);
const AsyncMemoryPersistence: new (opts?: object) => object = load('aedes-persistence/asyncPersistence.js');
const { CallBackPersistence } = load('aedes-persistence/callBackPersistence.js');
const Packet: new (packet: AedesPacket) => AedesPacket = load('aedes-packet');

type Queue = { byKey: Map<string, AedesPacket>; byMessageId: Map<number, string> };
type ClientRef = { id: string };

const keyOf = (p: AedesPacket) => `${p.brokerId}:${p.brokerCounter}`;

class IndexedOutgoingPersistence extends (AsyncMemoryPersistence as new (opts?: object) => object) {
  private readonly queues = new Map<string, Queue>();

  private queue(clientId: string): Queue {
    let q = this.queues.get(clientId);
    if (!q) this.queues.set(clientId, (q = { byKey: new Map(), byMessageId: new Map() }));
    return q;
  }

  async outgoingEnqueue(sub: { clientId: string }, packet: AedesPacket): Promise<void> {
    const copy = new Packet(packet);
    this.queue(sub.clientId).byKey.set(keyOf(copy), copy);
  }

  async outgoingEnqueueCombi(subs: { clientId: string }[], packet: AedesPacket): Promise<void> {
    for (const sub of subs) await this.outgoingEnqueue(sub, packet);
  }

  /** The stock rule: the same broker packet takes the new messageId; a packet of another broker with that messageId is replaced. */
  async outgoingUpdate(client: ClientRef, packet: AedesPacket): Promise<void> {
    const q = this.queue(client.id);
    const same = q.byKey.get(keyOf(packet));
    if (same) {
      if (same.messageId !== undefined && q.byMessageId.get(same.messageId) === keyOf(same)) q.byMessageId.delete(same.messageId);
      same.messageId = packet.messageId;
      if (packet.messageId !== undefined) q.byMessageId.set(packet.messageId, keyOf(same));
      return;
    }
    const otherKey = packet.messageId === undefined ? undefined : q.byMessageId.get(packet.messageId);
    const other = otherKey === undefined ? undefined : q.byKey.get(otherKey);
    if (other && other.brokerId !== packet.brokerId) {
      // Keep its place in the queue: rebuild the order with the replacement where the old one was.
      const entries = [...q.byKey].map(([k, p]) => (k === otherKey ? ([keyOf(packet), packet] as const) : ([k, p] as const)));
      q.byKey = new Map(entries);
      q.byMessageId.set(packet.messageId!, keyOf(packet));
      return;
    }
    throw new Error('no such packet');
  }

  async outgoingClearMessageId(client: ClientRef, packet: { messageId?: number }): Promise<AedesPacket | undefined> {
    const q = this.queue(client.id);
    if (packet.messageId === undefined) return undefined;
    const key = q.byMessageId.get(packet.messageId);
    const found = key === undefined ? undefined : q.byKey.get(key);
    if (!found || found.messageId !== packet.messageId) return undefined;
    q.byMessageId.delete(packet.messageId);
    q.byKey.delete(key!);
    return found;
  }

  outgoingStream(client: ClientRef): Readable {
    return Readable.from([...this.queue(client.id).byKey.values()]);
  }
}

/** What `Aedes.createBroker({ persistence })` takes: the callback wrapper aedes expects, around the indexed store. */
export function createBrokerPersistence(): unknown {
  return new CallBackPersistence((opts: object) => new IndexedOutgoingPersistence(opts), {});
}
