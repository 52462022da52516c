import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { providerSchema, providerVehicleIdSchema } from '../domain/operations-events';
import { partnerVehicleSchema, toPartnerVehicle } from '../domain/partner-vehicle';
import { readPartnerVehicle } from '../store/fleet';
import { partnerAccess, requireReadOrPartner } from './auth';
import { notFound, parseInput } from './errors';
import { errorSchema } from './schemas';

/**
 * Partners' routes (seed 000 GetVirtualRobot): a partner such as Uber asks which of our robots its
 * vehicle id is now, and how that robot and delivery stand. A `partner:<provider>` key sees only
 * its own provider's live mappings; anything else is the same 404, so an answer never tells it a
 * vehicle exists elsewhere. A `read` key (the Integrations Service) sees every provider's.
 */

export const partnerVehicleParamsSchema = z.object({
  provider: providerSchema.describe('e.g. uber, doordash (any case)'),
  providerVehicleId: providerVehicleIdSchema.describe("the partner's id for the vehicle"),
});

const partnerVehicleResourceSchema = partnerVehicleSchema.meta({ id: 'PartnerVehicle' });

export function partnerRoutes(deps: { prisma: PrismaClient }): Router {
  const router = Router();

  router.get('/v1/partners/:provider/vehicles/:providerVehicleId', requireReadOrPartner(), async (req, res) => {
    const { provider, providerVehicleId } = parseInput(partnerVehicleParamsSchema, req.params);
    const access = partnerAccess(res);
    const vehicle = access === 'any' || access.has(provider) ? await readPartnerVehicle(deps.prisma, provider, providerVehicleId) : null;
    if (vehicle === null) throw notFound(`no robot is mapped to ${provider} vehicle ${providerVehicleId}`);
    res.json(partnerVehicleSchema.parse(toPartnerVehicle(vehicle)));
  });

  return router;
}

export function registerPartnerPaths(registry: OpenAPIRegistry, secured: Record<string, string[]>[]): void {
  const json = (description: string, schema: z.ZodType): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
  registry.registerPath({
    method: 'get',
    path: '/v1/partners/{provider}/vehicles/{providerVehicleId}',
    summary: 'The robot a partner vehicle id is mapped to now, with its live status (scope read, or partner:<provider> for its own vehicles)',
    description:
      'Seed GetVirtualRobot. The newest live mapping of ProviderMapping.Created wins; after ProviderMapping.Ended the id is unknown. ' +
      'A key with scope `partner:<provider>` reaches this route only, and sees only vehicles mapped to its provider now: any other ' +
      'id is a 404, never a 403. Partner keys have their own rate limit (PARTNER_RATE_LIMIT_PER_SECOND, PARTNER_RATE_BURST).',
    security: secured,
    request: { params: partnerVehicleParamsSchema },
    responses: {
      200: json('The vehicle: our robot and its VehicleStatus', partnerVehicleResourceSchema),
      400: json('Invalid provider or providerVehicleId; the message names it', errorSchema),
      401: json('Missing or unknown x-api-key', errorSchema),
      403: json('The API key has neither the read scope nor a partner scope', errorSchema),
      404: json('No robot is mapped to that vehicle id now, or not for this key', errorSchema),
    },
  });
}
