import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../../config';
import type { PartnerStatusUpdate } from '../../domain/partner-delivery';
import { doordash } from './doordash';
import { partnerFailureTypes } from './http';

/**
 * Partner adapters: each provider is one file here exporting a PartnerModule, listed below.
 * The partner-delivery workflow and the API only ever see provider names.
 */

export interface PartnerAdapter {
  readonly provider: string;
  /** Resolves when the partner took it; throws ApplicationFailures as ./http.ts classifies them. */
  pushStatus(update: PartnerStatusUpdate): Promise<void>;
}

export type PartnerModule = {
  provider: string;
  /** Null when the configuration does not name this partner's endpoint and credentials. */
  fromConfig(config: Config): PartnerAdapter | null;
};

const modules: PartnerModule[] = [doordash];

/** Providers whose ProviderMapping.Created starts a partner-delivery workflow. */
export const partnerProviders: readonly string[] = modules.map((m) => m.provider);

export type PartnerRegistry = ReadonlyMap<string, PartnerAdapter>;

export function createPartnerRegistry(config: Config): PartnerRegistry {
  const adapters = modules.flatMap((m) => {
    const adapter = m.fromConfig(config);
    return adapter ? [[m.provider, adapter] as const] : [];
  });
  return new Map(adapters);
}

export function partnerAdapter(registry: PartnerRegistry | undefined, provider: string): PartnerAdapter {
  const adapter = registry?.get(provider);
  if (!adapter) throw ApplicationFailure.nonRetryable(`no ${provider} endpoint is configured on this worker`, partnerFailureTypes.notConfigured);
  return adapter;
}
