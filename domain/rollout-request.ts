import { z } from 'zod';
import { declareKeys } from './json-schema';
import { TARGET_ARN } from './rollout';

/** POST /v1/deployments: the rollout request (domain/rollout.ts has the rest of the rollout logic). */

export const componentNameSchema = z.string().regex(/^[a-zA-Z0-9._-]{1,128}$/, 'must be a Greengrass component name (letters, digits, . _ -)');

export const componentSpecSchema = z.strictObject({
  componentVersion: z.string().regex(/^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/, 'must be a semantic version such as 1.0.0'),
  configurationUpdate: z
    .strictObject({
      merge: z.string().max(10_000).optional().describe('a JSON document merged into the configuration'),
      reset: z.array(z.string().max(256)).max(100).optional().describe('JSON pointers to reset to defaults'),
    })
    .optional(),
});

export const rolloutPolicySchema = z.strictObject({
  canaryDevices: z
    .union([z.number().int().min(0).max(1000), z.array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be robot serials')).min(1).max(1000)])
    .default(0)
    .describe('how many devices (or which serials) get the rollout first; 0: no canary stage'),
  soakSeconds: z.number().int().min(0).max(86_400).default(300).describe('how long canaries must stay healthy before the rest'),
  maxFailurePercent: z.number().min(0).max(100).default(0).describe('stop when more than this share of devices failed'),
  deadlineSeconds: z.number().int().min(1).max(7 * 86_400).default(86_400).describe('stop (as FAILED) if not done by then'),
});
export type RolloutPolicy = z.output<typeof rolloutPolicySchema>;

export const startDeploymentSchema = z.strictObject({
  targetArn: z
    .string()
    .max(2048)
    .regex(TARGET_ARN, 'must be an IoT thing or thing group ARN (arn:aws:iot:<region>:<account>:thing/<serial> or :thinggroup/<name>)'),
  components: declareKeys(z.record(componentNameSchema, componentSpecSchema))
    .refine((c) => Object.keys(c).length > 0, 'must name at least one component')
    .refine((c) => Object.keys(c).length <= 50, 'at most 50 components')
    .meta({ minProperties: 1, maxProperties: 50 }),
  rollout: rolloutPolicySchema.default(() => rolloutPolicySchema.parse({})),
  requestId: z.string().min(1).max(200).optional().describe('the same requestId again returns the first deployment'),
});
export type StartDeployment = z.output<typeof startDeploymentSchema>;
export type Components = StartDeployment['components'];
