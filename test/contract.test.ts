import { createHmac, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { startFleet, type TestFleet } from './support/fleet';
import { Contract, namesField, type Case, type RequestInput } from './support/openapi-contract';
import { routeName, routes, type OpenApiDocument, type RouteSpec } from './support/routes';

/**
 * The OpenAPI document is the contract: for every route of test/support/routes.ts, values the
 * document calls valid (random ones, and each bound it declares) are never a 400, and a value that
 * breaks any constraint it declares (required, type, enum, pattern, length, range, count, key
 * names, conditions) is a 400 naming that field. Every answer is one the document lists, in the
 * shape it gives. (test/methods.test.ts: a method a known path does not serve.)
 */

const WEBHOOK_SECRET = `contract-${randomUUID()}`;
// Fixed seeds keep CI reproducible; CONTRACT_SEED and CONTRACT_RUNS explore further.
const SEED = Number(process.env.CONTRACT_SEED ?? 16);
const VALID_RUNS = Number(process.env.CONTRACT_RUNS ?? 20);

let fleet: TestFleet;
let doc: OpenApiDocument;
let contract: Contract;
// Rollouts the valid requests start, cancelled at the end so their workflows do not outlive the test.
const deployments = new Set<string>();

type Answer = { status: number; type: string | null; body: any };

const keyed = (route: RouteSpec) => route.access !== 'public' && route.access !== 'signature';
const signature = (raw: string) => `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(raw).digest('hex')}`;
// A path segment of dots would be resolved away by the URL parser: sent percent-encoded, as a browser would.
const segment = (value: unknown) => encodeURIComponent(String(value)).replace(/\./g, '%2E');

async function send(route: RouteSpec, input: RequestInput): Promise<Answer> {
  const path = route.path.replace(/\{(\w+)\}/g, (_m, name: string) => segment(input.path[name]));
  const query = new URLSearchParams(Object.entries(input.query).map(([k, v]): [string, string] => [k, String(v)])).toString();
  const raw = 'body' in input ? JSON.stringify(input.body) : undefined;
  const headers: Record<string, string> = Object.fromEntries(Object.entries(input.header).map(([k, v]) => [k, String(v)]));
  if (keyed(route)) headers['x-api-key'] = fleet.keys.all;
  if (route.access === 'signature') headers['x-driveu-signature'] = signature(raw ?? '');
  if (raw !== undefined) headers['content-type'] = 'application/json';
  return call(route.method, `${path}${query ? `?${query}` : ''}`, headers, raw);
}

/** One request; an event stream is closed as soon as its headers arrive. */
async function call(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const abort = new AbortController();
  const res = await fetch(`${fleet.url}${path}`, { method, headers, body, signal: abort.signal });
  const type = res.headers.get('content-type');
  if (type?.startsWith('text/event-stream')) {
    abort.abort();
    return { status: res.status, type, body: undefined };
  }
  const text = await res.text();
  return { status: res.status, type, body: type?.includes('json') && text ? JSON.parse(text) : text };
}

/** What is wrong with an answer to a request the document calls valid; null when nothing is. */
function problemWithValidAnswer(route: RouteSpec, answer: Answer): string | null {
  if (answer.status === 400) return `400 ${answer.body?.error?.message}`;
  if (answer.status >= 500) return `${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`;
  return problemWithListing(route, answer);
}

/** An answer the operation does not list, or a JSON body that does not fit the schema it lists. */
function problemWithListing(route: RouteSpec, answer: Answer): string | null {
  const listed = contract.operation(route).responses?.[String(answer.status)];
  if (!listed) return `${answer.status} is not among the answers the document lists`;
  const schema = listed.content?.['application/json']?.schema;
  if (!schema || !answer.type?.includes('json')) return null;
  const wrong = contract.violations(schema, answer.body);
  return wrong.length ? `${answer.status} does not fit its schema: ${wrong.slice(0, 5).join('; ')}` : null;
}

const shown = (input: RequestInput) => JSON.stringify(input).slice(0, 400);

beforeAll(async () => {
  fleet = await startFleet({
    DRIVEU_WEBHOOK_SECRET: WEBHOOK_SECRET,
    // One client sending as fast as it can; the limits are tested in test/security-limits.test.ts.
    API_RATE_LIMIT_PER_SECOND: '0',
    IP_RATE_LIMIT_PER_SECOND: '0',
    PIN_CHECK_RATE_PER_SECOND: '0',
  });
  doc = (await fleet.api('/openapi.json')).body;
  contract = new Contract(doc);
});

afterAll(async () => {
  for (const id of deployments) await call('POST', `/v1/deployments/${id}/cancel`, { 'x-api-key': fleet.keys.all, 'content-type': 'application/json' }, '{}');
  await fleet?.stop();
});

/** Remembers the rollouts a request started. */
function noteDeployment(route: RouteSpec, answer: Answer): void {
  if (route.method === 'POST' && route.path === '/v1/deployments' && answer.status < 300) deployments.add(answer.body.deploymentId);
}

test('every constraint the document declares is one this test knows how to break', () => {
  const unhandled: string[] = [];
  for (const route of routes) {
    const schema = contract.inputSchema(route);
    contract.cases(schema, contract.sample(schema, SEED, true), SEED, unhandled);
  }
  expect(unhandled).toEqual([]);
});

describe.each(routes.map((r) => [routeName(r), r] as const))('%s', (_name, route) => {
  test(`${VALID_RUNS} requests the document calls valid: never a 400 or a 5xx, only answers it lists, in its shapes`, async () => {
    const schema = contract.inputSchema(route);
    const arbitrary = contract.arbitrary(schema);
    if (!arbitrary) throw new Error(`the document describes a required input of ${routeName(route)} only in words`);
    const problems: string[] = [];
    for (const input of fc.sample(arbitrary, { numRuns: VALID_RUNS, seed: SEED }) as RequestInput[]) {
      expect(contract.violations(schema, input)).toEqual([]);
      const answer = await send(route, input);
      noteDeployment(route, answer);
      const problem = problemWithValidAnswer(route, answer);
      if (problem) problems.push(`${problem} for ${shown(input)}`);
    }
    expect(problems).toEqual([]);
  });

  test('each value just outside a declared constraint is a 400 naming its field; each value on its bound is not a 400', async () => {
    const schema = contract.inputSchema(route);
    const cases: Case[] = contract.cases(schema, contract.sample(schema, SEED, true), SEED);
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const c of cases) {
      const key = JSON.stringify(c.input);
      if (seen.has(key)) continue;
      seen.add(key);
      const valid = contract.isValid(schema, c.input);
      const answer = await send(route, c.input);
      noteDeployment(route, answer);
      if (valid) {
        const problem = problemWithValidAnswer(route, answer);
        if (problem) problems.push(`${c.what} (valid): ${problem} for ${shown(c.input)}`);
        continue;
      }
      const violations: { field: string }[] = answer.body?.error?.details?.fieldViolations ?? [];
      if (answer.status !== 400) problems.push(`${c.what}: ${answer.status}, not 400, for ${shown(c.input)}`);
      else if (!namesField(violations, c)) problems.push(`${c.what}: the 400 names ${violations.map((v) => v.field).join(', ')}, not ${c.field}`);
      else {
        const problem = problemWithListing(route, answer);
        if (problem) problems.push(`${c.what}: ${problem}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
