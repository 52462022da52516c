import { loadConfig } from '../config';
import { connectTemporal, ensureSearchAttributes } from '../clients/connection';

/**
 * `npm run temporal:setup`: what an operator runs once per Temporal namespace before the first
 * worker (the local servers of npm start get it at start): the contract's search attributes
 * RobotSerial (Keyword), FleetStatus (Keyword) and Online (Bool). Safe to run again. On Temporal
 * Cloud, add them in the Cloud UI or with tcld if the API key may not (docs/operations.md).
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const connection = await connectTemporal(config);
  try {
    const added = await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
    console.log(added.length ? `added search attributes ${added.join(', ')} to namespace ${config.TEMPORAL_NAMESPACE}` : `namespace ${config.TEMPORAL_NAMESPACE} has every search attribute already`);
  } finally {
    await connection.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
