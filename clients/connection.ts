import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

const { IndexedValueType } = temporal.api.enums.v1;
type IndexedValueType = temporal.api.enums.v1.IndexedValueType;
import type { Config } from '../config';
import { defaultTemporalAddress } from '../temporal.config';

/**
 * How to reach the configured cluster (local server, self-hosted, or Temporal Cloud): the same for
 * every client and every worker (`NativeConnection.connect` takes these options too).
 */
export function temporalConnectionOptions(config: Config, address = config.TEMPORAL_ADDRESS ?? defaultTemporalAddress) {
  const tls = config.TEMPORAL_TLS_CERT && config.TEMPORAL_TLS_KEY
    ? { clientCertPair: { crt: readFileSync(config.TEMPORAL_TLS_CERT), key: readFileSync(config.TEMPORAL_TLS_KEY) } }
    : config.TEMPORAL_API_KEY ? true : undefined;
  return { address, tls, apiKey: config.TEMPORAL_API_KEY };
}

/** A client connection to the configured cluster. */
export async function connectTemporal(config: Config, address?: string): Promise<Connection> {
  return Connection.connect(temporalConnectionOptions(config, address));
}

/**
 * Connects, trying again every 2 s while the cluster cannot be reached, for up to
 * TEMPORAL_CONNECT_WAIT_SECONDS: a process started while Temporal restarts waits for it instead of
 * exiting; a wrong address still fails, later.
 */
export async function whenTemporalAnswers<T>(config: Config, connect: () => Promise<T>, onRetry: (error: Error) => void): Promise<T> {
  const deadline = Date.now() + config.TEMPORAL_CONNECT_WAIT_SECONDS * 1000;
  for (;;) {
    try {
      return await connect();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      onRetry(error as Error);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

export function createTemporalClient(connection: Connection, namespace: string): Client {
  return new Client({ connection, namespace });
}

const wanted: Record<string, IndexedValueType> = {
  RobotSerial: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  FleetStatus: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Online: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
};

/** Registers the contract's search attributes on a cluster that lacks them (the dev server gets them by flag). */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const missing = await missingSearchAttributes(connection, namespace);
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: Object.fromEntries(missing.map((name) => [name, wanted[name]])) });
  return missing;
}

/** The contract's search attributes the namespace lacks (a worker started alone checks, and says what to run). */
export async function missingSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  return Object.keys(wanted).filter((name) => !(name in (existing.customAttributes ?? {})));
}

/** The client type, for the factories that receive one (api/, ingest/), which import nothing of Temporal's client library. */
export type { Client as TemporalClient } from '@temporalio/client';

/** Whether the cluster answers within the deadline (readiness). */
export async function temporalAnswers(client: Client, deadline: number): Promise<void> {
  await client.withDeadline(deadline, () => client.workflowService.getSystemInfo({}));
}

/** Whether a server at `address` serves `namespace` yet (the local servers' start-up). */
export async function servesNamespace(address: string, namespace: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1000 });
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } finally {
    await connection.close();
  }
}
