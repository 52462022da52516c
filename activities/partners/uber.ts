import type { PartnerModule } from './index';

/**
 * Uber pulls: it reads a vehicle's status from GET /v1/partners/uber/vehicles/{providerVehicleId}
 * with a `partner:uber` key, so there is nothing to push and no configuration. Its
 * partner-delivery workflow records the delivery's lifecycle as events.
 */
export const uber: PartnerModule = { provider: 'uber', receives: 'pull' };
