import { randomUUID } from 'node:crypto';
import type { Config } from '../../config';
import { buildVehicleStatus, signDoorDashJwt, type DoorDashCredentials } from '../../domain/partner-doordash';
import type { PartnerAdapter, PartnerModule } from './index';
import { postJson } from './http';

/** DoorDash: VehicleStatus to POST {DOORDASH_BASE_URL}/v3/vehicles/status, with a fresh JWT each time. */
export const doordash: PartnerModule = {
  provider: 'doordash',
  receives: 'push',
  fromConfig(config: Config): PartnerAdapter | null {
    const { DOORDASH_BASE_URL: baseUrl, DOORDASH_DEVELOPER_ID: developerId, DOORDASH_KEY_ID: keyId, DOORDASH_SIGNING_SECRET: signingSecret } = config;
    if (!baseUrl || !developerId || !keyId || !signingSecret) return null;
    return createDoorDashAdapter(baseUrl, { developerId, keyId, signingSecret });
  },
};

export function createDoorDashAdapter(baseUrl: string, creds: DoorDashCredentials): PartnerAdapter {
  const url = new URL('v3/vehicles/status', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).toString();
  return {
    provider: 'doordash',
    async pushStatus(update) {
      const jwt = signDoorDashJwt(creds, Math.floor(Date.now() / 1000));
      await postJson(url, buildVehicleStatus(update), {
        authorization: `Bearer ${jwt}`,
        'idempotency-key': update.pushId || randomUUID(),
      });
    },
  };
}
