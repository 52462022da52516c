import { startFleet, type TestFleet } from './support/fleet';
import { routes } from './support/routes';

/**
 * A method a known path does not serve is a 405 whose Allow header lists the ones it does (HEAD
 * wherever GET is), before and regardless of the API key; an unknown path stays a 404. Driven by
 * test/support/routes.ts, so a new route is covered as soon as it is listed there.
 */

let fleet: TestFleet;

type Answer = { status: number; allow: string | null; body: any };

async function call(method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${fleet.url}${path}`, { method, headers });
  const text = await res.text();
  return { status: res.status, allow: res.headers.get('allow'), body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  fleet = await startFleet();
});

afterAll(async () => {
  await fleet?.stop();
});

const paths = [...new Set(routes.map((r) => r.path))];

/** The methods a path serves, as Allow should list them. */
function served(path: string): Set<string> {
  const methods = routes.filter((r) => r.path === path).map((r) => r.method as string);
  return new Set(methods.includes('GET') ? [...methods, 'HEAD'] : methods);
}

/** The path with a value in each parameter: which methods a path serves does not depend on them. */
const filled = (path: string) => path.replace(/\{\w+\}/g, 'X1');

test.each(paths)('a method %s does not serve is a 405 whose Allow lists the ones it does, with or without a key', async (path) => {
  const allowed = served(path);
  for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => !allowed.has(m))) {
    for (const headers of [{}, { 'x-api-key': fleet.keys.all }] as Record<string, string>[]) {
      const answer = await call(method, filled(path), headers);
      expect([method, answer.status, new Set(answer.allow?.split(', '))]).toEqual([method, 405, allowed]);
      if (method !== 'HEAD') expect(answer.body).toEqual({ error: { code: 'METHOD_NOT_ALLOWED', message: expect.stringContaining(`${method} is not allowed`) } });
    }
  }
});

test('an unknown path is still a 404 with a key and a 401 without one, whatever the method', async () => {
  for (const [method, path] of [
    ['GET', '/v1/no-such-thing'],
    ['POST', '/v1/devices/ABC123/no-such-thing'],
    ['DELETE', '/v1/deployments/a/b/c'],
    ['GET', '/'],
  ]) {
    const withKey = await call(method, path, { 'x-api-key': fleet.keys.all });
    expect([method, path, withKey.status, withKey.allow, withKey.body.error?.code]).toEqual([method, path, 404, null, 'NOT_FOUND']);
    expect((await call(method, path)).status).toBe(401);
  }
});
