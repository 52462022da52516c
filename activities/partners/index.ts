import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../../config';
import type { PartnerStatusUpdate } from '../../domain/partner-delivery';
import { doordash } from './doordash';
import { uber } from './uber';
import { partnerFailureTypes } from './http';

/**
 * Partners: each provider is one file here exporting a PartnerModule, listed below. A partner
 * either takes pushes (an adapter the partner-delivery workflow calls) or pulls (it reads
 * GET /v1/partners/{provider}/vehicles/{providerVehicleId} with a `partner:<provider>` key).
 * The partner-delivery workflow and the API only ever see provider names and that choice.
 */

export interface PartnerAdapter {
  readonly provider: string;
  /** Resolves when the partner took it; throws ApplicationFailures as ./http.ts classifies them. */
  pushStatus(update: PartnerStatusUpdate): Promise<void>;
}

export type PartnerModule =
  | {
      provider: string;
      receives: 'push';
      /** Null when the configuration does not name this partner's endpoint and credentials. */
      fromConfig(config: Config): PartnerAdapter | null;
    }
  | { provider: string; receives: 'pull' };

const modules: PartnerModule[] = [doordash, uber];

/** Providers whose ProviderMapping.Created starts a partner-delivery workflow, and whose keys may look their vehicles up. */
export const partnerProviders: readonly string[] = modules.map((m) => m.provider);

/** How a provider learns a delivery's status; undefined for a provider no module names. */
export const partnerReceives = (provider: string): PartnerModule['receives'] | undefined => modules.find((m) => m.provider === provider)?.receives;

export type PartnerRegistry = ReadonlyMap<string, PartnerAdapter>;

export function createPartnerRegistry(config: Config): PartnerRegistry {
  const adapters = modules.flatMap((m) => {
    const adapter = m.receives === 'push' ? m.fromConfig(config) : null;
    return adapter ? [[m.provider, adapter] as const] : [];
  });
  return new Map(adapters);
}

export function partnerAdapter(registry: PartnerRegistry | undefined, provider: string): PartnerAdapter {
  const adapter = registry?.get(provider);
  if (!adapter) throw ApplicationFailure.nonRetryable(`no ${provider} endpoint is configured on this worker`, partnerFailureTypes.notConfigured);
  return adapter;
}
