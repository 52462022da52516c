import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyDoorDashJwt, vehicleStatusSchema, type DoorDashCredentials, type VehicleStatus } from '../domain/partner-doordash';

/**
 * A local DoorDash-compatible endpoint for `npm start` and the tests: POST /v3/vehicles/status
 * checks the JWT and the VehicleStatus payload as DoorDash would, records what it accepts, and can
 * be told to throttle (429 with Retry-After) or fail the next requests. Control, for people:
 * GET /__local/pushes, POST /__local/throttle `{ count, retryAfterSeconds }`, POST /__local/fail `{ count, status }`.
 */

export type RecordedPush = { receivedAt: number; idempotencyKey: string | null; body: VehicleStatus };
export type RecordedAttempt = { receivedAt: number; status: number; idempotencyKey: string | null; reason?: string };

export type LocalDoorDash = {
  url: string;
  credentials: DoorDashCredentials;
  /** Pushes answered 200, in arrival order. */
  pushes: RecordedPush[];
  /** Every request to /v3/vehicles/status with the status it got. */
  attempts: RecordedAttempt[];
  throttleNext(count: number, retryAfterSeconds: number): void;
  failNext(count: number, status: number): void;
  stop(): Promise<void>;
};

const MAX_BODY = 64 * 1024;

export async function startLocalDoorDash(options: { port?: number; credentials?: Partial<DoorDashCredentials> } = {}): Promise<LocalDoorDash> {
  const credentials: DoorDashCredentials = {
    developerId: options.credentials?.developerId ?? 'local-developer',
    keyId: options.credentials?.keyId ?? 'local-key',
    signingSecret: options.credentials?.signingSecret ?? randomBytes(32).toString('base64url'),
  };
  const pushes: RecordedPush[] = [];
  const attempts: RecordedAttempt[] = [];
  let throttle = { count: 0, retryAfterSeconds: 1 };
  let failure = { count: 0, status: 500 };

  const statusRoute = async (req: IncomingMessage, res: ServerResponse) => {
    const idempotencyKey = req.headers['idempotency-key']?.toString() ?? null;
    const answer = (status: number, body: object, reason?: string, headers: Record<string, string> = {}) => {
      attempts.push({ receivedAt: Date.now(), status, idempotencyKey, ...(reason ? { reason } : {}) });
      send(res, status, body, headers);
    };
    const auth = req.headers.authorization ?? '';
    const refused = auth.startsWith('Bearer ') ? verifyDoorDashJwt(auth.slice(7), credentials, Math.floor(Date.now() / 1000)) : 'no Bearer token';
    if (refused) return answer(401, { code: 'authentication_error', message: refused }, refused);
    if (throttle.count > 0) {
      throttle.count--;
      return answer(429, { code: 'too_many_requests', message: 'throttled' }, 'throttled', { 'retry-after': String(throttle.retryAfterSeconds) });
    }
    if (failure.count > 0) {
      failure.count--;
      return answer(failure.status, { code: 'injected_failure', message: `failing with ${failure.status} as told` }, 'injected');
    }
    const parsed = vehicleStatusSchema.safeParse(await readJson(req));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const reason = `${issue.path.join('.') || 'body'}: ${issue.message}`;
      return answer(400, { code: 'validation_error', message: reason }, reason);
    }
    pushes.push({ receivedAt: Date.now(), idempotencyKey, body: parsed.data });
    answer(200, { vehicle_id: parsed.data.vehicle_id, delivery_status: parsed.data.delivery_status });
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const route =
      req.method === 'POST' && path === '/v3/vehicles/status'
        ? statusRoute(req, res)
        : req.method === 'GET' && path === '/__local/pushes'
          ? Promise.resolve(send(res, 200, { pushes, attempts }))
          : req.method === 'POST' && path === '/__local/throttle'
            ? readJson(req).then((b) => {
                const body = b as { count?: number; retryAfterSeconds?: number };
                throttle = { count: body.count ?? 1, retryAfterSeconds: body.retryAfterSeconds ?? 1 };
                send(res, 200, throttle);
              })
            : req.method === 'POST' && path === '/__local/fail'
              ? readJson(req).then((b) => {
                  const body = b as { count?: number; status?: number };
                  failure = { count: body.count ?? 1, status: body.status ?? 500 };
                  send(res, 200, failure);
                })
              : Promise.resolve(send(res, 404, { code: 'not_found', message: `no route for ${req.method} ${path}` }));
    route.catch(() => send(res, 400, { code: 'bad_request', message: 'body is not JSON' }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    credentials,
    pushes,
    attempts,
    throttleNext: (count, retryAfterSeconds) => void (throttle = { count, retryAfterSeconds }),
    failNext: (count, status) => void (failure = { count, status }),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function send(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? {} : JSON.parse(text);
}
