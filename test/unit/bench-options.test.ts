import { defaultOptions, histogramQuantile, parseArgs } from '../../bench/run';
import { stackProblem } from '../../bench/stack';

/** The benchmark's stack options (docs/performance.md): the defaults stay those of earlier results, and a stack that cannot run is refused before anything starts. */

test('the defaults are the stack of earlier results: aedes, MQTT, one ingest worker, no RabbitMQ, the dev server, one robot worker', () => {
  expect(defaultOptions).toMatchObject({ source: 'mqtt', broker: 'aedes', ingestWorkers: 1, amqp: false, temporal: 'dev', workers: 1 });
  expect(parseArgs([])).toEqual({});
});

test('each stack option is read from the command line, and a wrong value is named', () => {
  expect(parseArgs(['--source', 'sqs', '--broker', 'mosquitto', '--ingest-workers', '3', '--amqp', '--temporal', 'postgres', '--workers', '2'])).toEqual({
    source: 'sqs',
    broker: 'mosquitto',
    ingestWorkers: 3,
    amqp: true,
    temporal: 'postgres',
    workers: 2,
  });
  expect(() => parseArgs(['--source', 'kafka'])).toThrow('--source: expected mqtt or sqs, got kafka');
  expect(() => parseArgs(['--broker'])).toThrow('--broker: expected aedes or mosquitto, got undefined');
  expect(() => parseArgs(['--workers', '0'])).toThrow('--workers: expected a positive number');
});

test('several ingest workers on MQTT need Mosquitto: aedes has no shared subscriptions', () => {
  expect(stackProblem({ mode: 'designed', ingestWorkers: 2 })).toMatch(/--broker mosquitto/);
  expect(stackProblem({ mode: 'designed', ingestWorkers: 2, broker: 'mosquitto' })).toBeNull();
  expect(stackProblem({ mode: 'designed', ingestWorkers: 2, source: 'sqs' })).toBeNull();
  expect(stackProblem({ mode: 'designed' })).toBeNull();
});

test('SQS, several ingest workers and RabbitMQ measure the designed ingest only', () => {
  expect(stackProblem({ mode: 'naive', source: 'sqs' })).toMatch(/--modes a/);
  expect(stackProblem({ mode: 'floor', amqpUrl: 'amqp://127.0.0.1' })).toMatch(/--modes a/);
  expect(stackProblem({ mode: 'naive', broker: 'mosquitto' })).toBeNull();
});

test("quantiles of the Temporal server's histogram are interpolated inside the bucket, as Prometheus's histogram_quantile does", () => {
  const buckets: [number, number][] = [[0.01, 50], [0.1, 90], [1, 100], [Infinity, 100]];
  expect(histogramQuantile(buckets, 0.5)).toBeCloseTo(0.01);
  expect(histogramQuantile(buckets, 0.7)).toBeCloseTo(0.055);
  expect(histogramQuantile(buckets, 0.99)).toBeCloseTo(0.91);
  // Past the last finite bound: that bound.
  expect(histogramQuantile([[0.5, 10], [Infinity, 20]], 0.99)).toBe(0.5);
  expect(histogramQuantile([], 0.5)).toBe(0);
});
