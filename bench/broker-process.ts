import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import { createBrokerPersistence } from '../infra/mqtt-persistence';

/** bench/broker-backlog.ts's broker: aedes on a port, with the stock or the indexed persistence. */
async function main(): Promise<void> {
  const [kind, port] = [process.argv[2], Number(process.argv[3])];
  const broker = await Aedes.createBroker(kind === 'indexed' ? { persistence: createBrokerPersistence() as never } : {});
  createServer(broker.handle).listen(port, '127.0.0.1', () => console.log('listening'));
}

void main();
