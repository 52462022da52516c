import { GreengrassV2Client } from '@aws-sdk/client-greengrassv2';
import type { Config } from '../config';

/**
 * The Greengrass V2 client. Against real AWS it takes credentials from the SDK's usual chain
 * (environment, profile, web identity, container or instance role); against the local service
 * (infra/greengrass-local.ts) it signs with fixed dummy credentials, which that service accepts.
 */
export function createGreengrassClient(opts: { region: string; endpoint?: string; local?: boolean }): GreengrassV2Client {
  return new GreengrassV2Client({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.local ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
    // The SDK retries throttling and 5xx itself a few times; activities retry beyond that.
    maxAttempts: 3,
  });
}

const CREDENTIAL_VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_PROFILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
];

/** npm start runs the local service when neither an endpoint nor AWS credentials are configured. */
export function wantsLocalGreengrass(env: NodeJS.ProcessEnv, endpoint: string | undefined): boolean {
  return !endpoint && !CREDENTIAL_VARIABLES.some((name) => env[name]);
}

/** The client for a process's configuration; `localUrl` when npm start runs the local service. */
export function greengrassClientFromConfig(config: Pick<Config, 'GREENGRASS_ENDPOINT' | 'AWS_REGION'>, localUrl?: string): GreengrassV2Client {
  return createGreengrassClient({ region: config.AWS_REGION, endpoint: localUrl ?? config.GREENGRASS_ENDPOINT, local: localUrl !== undefined });
}
