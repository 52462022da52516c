import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local AWS IoT Greengrass V2 endpoint for runs without AWS (npm start, tests). It speaks the
 * restJson1 wire format of `@aws-sdk/client-greengrassv2` (routes, status codes, member names,
 * epoch-seconds timestamps, `x-amzn-errortype` errors) for the operations this project calls,
 * taken from the SDK's own operation schemas. Any SigV4 signature is accepted.
 *
 * Core devices are the robots it is told about plus those `knownThings()` returns (every robot
 * with a row in `devices`). Device executions move QUEUED → IN_PROGRESS → SUCCEEDED one step per
 * `stepMs`, installing the components RUNNING. `POST /_control` (or `control()`) makes a device
 * fail or stall, throttles or fails requests, and defines thing groups; the group `fleet` holds
 * every core device.
 */

type ExecutionStatus = 'QUEUED' | 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'CANCELED';
type Execution = { status: ExecutionStatus; reason: string; createdAt: number; modifiedAt: number };
type ComponentSpec = { componentVersion?: string; configurationUpdate?: unknown; runWith?: unknown };
type StoredDeployment = {
  deploymentId: string;
  deploymentName: string;
  targetArn: string;
  revisionId: string;
  components: Record<string, ComponentSpec>;
  deploymentPolicies?: { failureHandlingPolicy?: string };
  iotJobConfiguration?: unknown;
  tags: Record<string, string>;
  clientToken?: string;
  iotJobId: string;
  iotJobArn: string;
  status: 'ACTIVE' | 'CANCELED' | 'COMPLETED' | 'FAILED' | 'INACTIVE';
  isLatestForTarget: boolean;
  createdAt: number;
  executions: Record<string, Execution>;
};
type InstalledComponent = { componentVersion: string; lifecycleState: string; lifecycleStateDetails?: string; lastStatusChangeAt: number };
type CoreDeviceState = { status: 'HEALTHY' | 'UNHEALTHY'; lastStatusUpdateAt: number; installed: Record<string, InstalledComponent> };

export type ControlCommand =
  | { action: 'registerCoreDevice'; thingName: string }
  | { action: 'setThingGroup'; name: string; thingNames: string[] }
  | { action: 'failDevice'; thingName: string; reason?: string }
  | { action: 'stallDevice'; thingName: string }
  | { action: 'recoverDevice'; thingName: string }
  | { action: 'setComponentState'; thingName: string; componentName: string; lifecycleState: string }
  /** `pathContains` limits it to matching requests, e.g. one core device's. */
  | { action: 'throttle'; requests: number; pathContains?: string }
  | { action: 'internalError'; requests: number }
  | { action: 'loseCreateResponses'; requests: number }
  | { action: 'delayCreate'; ms: number }
  | { action: 'rejectComponent'; componentName: string }
  | { action: 'reset' };

export type LocalGreengrassOptions = {
  port?: number;
  host?: string;
  region?: string;
  accountId?: string;
  knownThings?: () => Promise<string[]>;
  stepMs?: number;
  /** Keeps deployments and devices across restarts (npm start), since rollout workflows outlive the process. */
  stateFile?: string;
};

export type LocalGreengrass = {
  url: string;
  region: string;
  accountId: string;
  control(command: ControlCommand): Promise<void>;
  /** Every deployment created, oldest first, as GetDeployment shows it plus its executions. */
  deployments(): StoredDeployment[];
  /** Greengrass API requests answered, by operation (throttled and failed ones too). */
  requestCounts(): Record<string, number>;
  /** Injected faults not yet used up. */
  pendingFaults(): { throttle: number; internalError: number; loseCreateResponses: number };
  stop(): Promise<void>;
};

type Faults = {
  failing: Map<string, string>;
  stalled: Set<string>;
  throttle: number;
  throttlePath: string;
  internalError: number;
  loseCreateResponses: number;
  createDelayMs: number;
  rejectedComponents: Set<string>;
};

const NUCLEUS = 'aws.greengrass.Nucleus';
const NUCLEUS_VERSION = '2.14.3';
const seconds = (ms: number) => ms / 1000;

class GreengrassError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export async function startLocalGreengrass(options: LocalGreengrassOptions = {}): Promise<LocalGreengrass> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const stepMs = options.stepMs ?? 1000;
  const arnPrefix = `arn:aws:iot:${region}:${accountId}`;

  let deployments: StoredDeployment[] = [];
  let devices = new Map<string, CoreDeviceState>();
  let groups = new Map<string, Set<string>>();
  const registered = new Set<string>();
  const counts: Record<string, number> = {};
  const faults: Faults = freshFaults();
  let dirty = false;

  if (options.stateFile && existsSync(options.stateFile)) {
    const saved = JSON.parse(readFileSync(options.stateFile, 'utf8'));
    deployments = saved.deployments ?? [];
    devices = new Map(Object.entries(saved.devices ?? {}));
    groups = new Map(Object.entries(saved.groups ?? {}).map(([k, v]) => [k, new Set(v as string[])]));
    for (const t of saved.registered ?? []) registered.add(t);
  }

  let knownCache: { at: number; things: Set<string> } | null = null;
  async function coreDevices(fresh = false): Promise<Set<string>> {
    if (fresh || !knownCache || Date.now() - knownCache.at > 500) {
      const fromDb = options.knownThings ? await options.knownThings() : [];
      knownCache = { at: Date.now(), things: new Set([...registered, ...fromDb, ...devices.keys()]) };
    }
    return knownCache.things;
  }
  function device(thing: string): CoreDeviceState {
    let d = devices.get(thing);
    if (!d) {
      const now = Date.now();
      d = { status: 'HEALTHY', lastStatusUpdateAt: now, installed: { [NUCLEUS]: { componentVersion: NUCLEUS_VERSION, lifecycleState: 'FINISHED', lastStatusChangeAt: now } } };
      devices.set(thing, d);
    }
    return d;
  }
  async function requireCoreDevice(thing: string): Promise<CoreDeviceState> {
    // A robot that just sent its first heartbeat may be newer than the cached list.
    if (!(await coreDevices()).has(thing) && !(await coreDevices(true)).has(thing)) {
      throw new GreengrassError(404, 'ResourceNotFoundException', `Core device ${thing} not found`, { resourceId: thing, resourceType: 'CoreDevice' });
    }
    return device(thing);
  }
  async function groupMembers(groupName: string): Promise<string[]> {
    if (groupName === 'fleet') return [...(await coreDevices())].sort();
    return [...(groups.get(groupName) ?? [])].sort();
  }
  function findDeployment(id: string): StoredDeployment {
    const d = deployments.find((x) => x.deploymentId === id);
    if (!d) throw new GreengrassError(404, 'ResourceNotFoundException', `Deployment ${id} not found`, { resourceId: id, resourceType: 'Deployment' });
    return d;
  }

  // --- Time moves device executions on -------------------------------------------------------
  function advance(): void {
    const now = Date.now();
    for (const dep of deployments) {
      for (const [thing, ex] of Object.entries(dep.executions)) {
        if (now - ex.modifiedAt < stepMs || ex.status === 'SUCCEEDED' || ex.status === 'FAILED' || ex.status === 'CANCELED') continue;
        if (faults.stalled.has(thing)) continue;
        if (ex.status === 'QUEUED') Object.assign(ex, { status: 'IN_PROGRESS', modifiedAt: now });
        else finishExecution(dep, thing, ex, now);
        dirty = true;
      }
      if (dep.status === 'ACTIVE' && dep.targetArn.includes(':thing/')) {
        const ex = Object.values(dep.executions)[0];
        if (ex?.status === 'SUCCEEDED') dep.status = 'COMPLETED';
        else if (ex?.status === 'FAILED') dep.status = 'FAILED';
      }
    }
    if (dirty && options.stateFile) save();
  }
  function finishExecution(dep: StoredDeployment, thing: string, ex: Execution, now: number): void {
    const dev = device(thing);
    const failure = faults.failing.get(thing);
    const names = Object.keys(dep.components);
    if (failure !== undefined) {
      const reason = failure || `component ${names[0]} failed to start`;
      const rollback = (dep.deploymentPolicies?.failureHandlingPolicy ?? 'ROLLBACK') === 'ROLLBACK';
      if (!rollback) {
        for (const name of names) {
          dev.installed[name] = { componentVersion: dep.components[name].componentVersion ?? '0.0.0', lifecycleState: 'BROKEN', lifecycleStateDetails: reason, lastStatusChangeAt: now };
        }
      }
      Object.assign(dev, { status: 'UNHEALTHY', lastStatusUpdateAt: now });
      Object.assign(ex, { status: 'FAILED', reason: rollback ? `${reason}; rolled back` : reason, modifiedAt: now });
      return;
    }
    for (const name of names) {
      dev.installed[name] = { componentVersion: dep.components[name].componentVersion ?? '0.0.0', lifecycleState: 'RUNNING', lastStatusChangeAt: now };
    }
    Object.assign(dev, { status: 'HEALTHY', lastStatusUpdateAt: now });
    Object.assign(ex, { status: 'SUCCEEDED', reason: '', modifiedAt: now });
  }
  const ticker = setInterval(advance, Math.max(20, Math.floor(stepMs / 4)));
  ticker.unref();

  function save(): void {
    dirty = false;
    writeFileSync(
      options.stateFile!,
      JSON.stringify({
        deployments,
        devices: Object.fromEntries(devices),
        groups: Object.fromEntries([...groups].map(([k, v]) => [k, [...v]])),
        registered: [...registered],
      }),
    );
  }

  // --- Operations ----------------------------------------------------------------------------
  async function createDeployment(body: any): Promise<[number, unknown]> {
    if (typeof body?.targetArn !== 'string' || !/^arn:aws[a-z-]*:iot:[^:]+:\d{12}:(thing|thinggroup)\/.+$/.test(body.targetArn)) {
      throw validation('targetArn must be the ARN of an IoT thing or thing group', 'targetArn');
    }
    const components = (body.components ?? {}) as Record<string, ComponentSpec>;
    for (const [name, spec] of Object.entries(components)) {
      if (!spec?.componentVersion) throw validation(`componentVersion is required for ${name}`, `components.${name}.componentVersion`);
      if (faults.rejectedComponents.has(name)) {
        throw validation(`Component ${name} version ${spec.componentVersion} does not exist in ${region}`, `components.${name}`);
      }
    }
    if (body.clientToken !== undefined && !/^[a-zA-Z0-9-]{1,64}$/.test(body.clientToken)) throw validation('clientToken must match ^[a-zA-Z0-9-]{1,64}$', 'clientToken');
    const again = body.clientToken ? deployments.find((d) => d.clientToken === body.clientToken) : undefined;
    if (again) return [201, { deploymentId: again.deploymentId, iotJobId: again.iotJobId, iotJobArn: again.iotJobArn }];

    const now = Date.now();
    const [, kind, name] = /:(thing|thinggroup)\/(.+)$/.exec(body.targetArn)!;
    const targets = kind === 'thing' ? [name] : await groupMembers(name);
    for (const d of deployments) {
      if (d.targetArn === body.targetArn && d.isLatestForTarget) {
        d.isLatestForTarget = false;
        if (d.status === 'ACTIVE') d.status = 'INACTIVE';
      }
    }
    const iotJobId = randomUUID();
    const dep: StoredDeployment = {
      deploymentId: randomUUID(),
      deploymentName: body.deploymentName ?? `Deployment for ${name}`,
      targetArn: body.targetArn,
      revisionId: String(deployments.filter((d) => d.targetArn === body.targetArn).length + 1),
      components,
      deploymentPolicies: body.deploymentPolicies,
      iotJobConfiguration: body.iotJobConfiguration,
      tags: body.tags ?? {},
      clientToken: body.clientToken,
      iotJobId,
      iotJobArn: `${arnPrefix}:job/${iotJobId}`,
      status: 'ACTIVE',
      isLatestForTarget: true,
      createdAt: now,
      executions: Object.fromEntries(targets.map((t) => [t, { status: 'QUEUED', reason: '', createdAt: now, modifiedAt: now }])),
    };
    deployments.push(dep);
    dirty = true;
    if (options.stateFile) save();
    if (faults.createDelayMs > 0) await new Promise((r) => setTimeout(r, faults.createDelayMs));
    if (faults.loseCreateResponses > 0) {
      faults.loseCreateResponses -= 1;
      throw new GreengrassError(500, 'InternalServerException', 'Internal failure after the deployment was created');
    }
    return [201, { deploymentId: dep.deploymentId, iotJobId: dep.iotJobId, iotJobArn: dep.iotJobArn }];
  }

  const deploymentSummary = (d: StoredDeployment) => ({
    targetArn: d.targetArn,
    revisionId: d.revisionId,
    deploymentId: d.deploymentId,
    deploymentName: d.deploymentName,
    creationTimestamp: seconds(d.createdAt),
    deploymentStatus: d.status,
    isLatestForTarget: d.isLatestForTarget,
  });

  function getDeployment(id: string): [number, unknown] {
    const d = findDeployment(id);
    return [
      200,
      {
        ...deploymentSummary(d),
        iotJobId: d.iotJobId,
        iotJobArn: d.iotJobArn,
        components: d.components,
        deploymentPolicies: d.deploymentPolicies,
        iotJobConfiguration: d.iotJobConfiguration,
        tags: d.tags,
      },
    ];
  }

  function cancelDeployment(id: string): [number, unknown] {
    const d = findDeployment(id);
    if (d.status !== 'ACTIVE') throw new GreengrassError(409, 'ConflictException', `Deployment ${id} is ${d.status} and cannot be canceled`, { resourceId: id, resourceType: 'Deployment' });
    d.status = 'CANCELED';
    const now = Date.now();
    // Devices that already received it finish; the others never will.
    for (const ex of Object.values(d.executions)) if (ex.status === 'QUEUED') Object.assign(ex, { status: 'CANCELED', reason: 'Deployment canceled', modifiedAt: now });
    dirty = true;
    return [200, { message: `Deployment ${id} canceled` }];
  }

  function listDeployments(q: URLSearchParams): [number, unknown] {
    const history = q.get('historyFilter') ?? 'LATEST_ONLY';
    const list = deployments
      .filter((d) => !q.get('targetArn') || d.targetArn === q.get('targetArn'))
      .filter((d) => history === 'ALL' || d.isLatestForTarget)
      .slice()
      .reverse();
    const page = paginate(list, q);
    return [200, { deployments: page.items.map(deploymentSummary), nextToken: page.nextToken }];
  }

  async function listCoreDevices(q: URLSearchParams): Promise<[number, unknown]> {
    const group = q.get('thingGroupArn');
    let things = [...(await coreDevices())].sort();
    if (group) {
      const m = /:thinggroup\/(.+)$/.exec(group);
      if (!m) throw validation('thingGroupArn must be a thing group ARN', 'thingGroupArn');
      things = await groupMembers(m[1]);
    }
    const rows = things.map((t) => ({ thing: t, d: device(t) })).filter((r) => !q.get('status') || r.d.status === q.get('status'));
    const page = paginate(rows, q);
    return [
      200,
      {
        coreDevices: page.items.map(({ thing, d }) => ({
          coreDeviceThingName: thing,
          status: d.status,
          lastStatusUpdateTimestamp: seconds(d.lastStatusUpdateAt),
          platform: 'linux',
          architecture: 'aarch64',
          runtime: 'aws_nucleus_classic',
        })),
        nextToken: page.nextToken,
      },
    ];
  }

  async function getCoreDevice(thing: string): Promise<[number, unknown]> {
    const d = await requireCoreDevice(thing);
    return [
      200,
      {
        coreDeviceThingName: thing,
        coreVersion: d.installed[NUCLEUS]?.componentVersion ?? NUCLEUS_VERSION,
        platform: 'linux',
        architecture: 'aarch64',
        runtime: 'aws_nucleus_classic',
        status: d.status,
        lastStatusUpdateTimestamp: seconds(d.lastStatusUpdateAt),
        tags: {},
      },
    ];
  }

  async function listEffectiveDeployments(thing: string, q: URLSearchParams): Promise<[number, unknown]> {
    await requireCoreDevice(thing);
    const list = deployments
      .filter((d) => d.executions[thing])
      .slice()
      .reverse()
      .map((d) => {
        const ex = d.executions[thing];
        return {
          deploymentId: d.deploymentId,
          deploymentName: d.deploymentName,
          iotJobId: d.iotJobId,
          iotJobArn: d.iotJobArn,
          description: '',
          targetArn: d.targetArn,
          coreDeviceExecutionStatus: ex.status,
          reason: ex.reason,
          creationTimestamp: seconds(ex.createdAt),
          modifiedTimestamp: seconds(ex.modifiedAt),
          statusDetails: ex.status === 'FAILED' ? { errorStack: ['DEPLOYMENT_FAILURE', 'COMPONENT_UPDATE_ERROR'], errorTypes: ['COMPONENT_ERROR'] } : { errorStack: [], errorTypes: [] },
        };
      });
    const page = paginate(list, q);
    return [200, { effectiveDeployments: page.items, nextToken: page.nextToken }];
  }

  async function listInstalledComponents(thing: string, q: URLSearchParams): Promise<[number, unknown]> {
    const d = await requireCoreDevice(thing);
    const list = Object.entries(d.installed)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, c]) => ({
        componentName: name,
        componentVersion: c.componentVersion,
        lifecycleState: c.lifecycleState,
        lifecycleStateDetails: c.lifecycleStateDetails,
        isRoot: name !== NUCLEUS,
        lastStatusChangeTimestamp: seconds(c.lastStatusChangeAt),
        lastReportedTimestamp: seconds(d.lastStatusUpdateAt),
        lastInstallationSource: 'LOCAL_DEPLOYMENT',
        lifecycleStatusCodes: [],
      }));
    const page = paginate(list, q);
    return [200, { installedComponents: page.items, nextToken: page.nextToken }];
  }

  async function route(method: string, path: string, q: URLSearchParams, body: unknown): Promise<[string, () => Promise<[number, unknown]> | [number, unknown]]> {
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] !== 'greengrass' || parts[1] !== 'v2') return ['Unknown', () => notFoundRoute(method, path)];
    const [, , collection, id, sub, extra] = parts;
    if (extra === undefined && collection === 'deployments') {
      if (method === 'POST' && id === undefined) return ['CreateDeployment', () => createDeployment(body)];
      if (method === 'GET' && id === undefined) return ['ListDeployments', () => listDeployments(q)];
      if (method === 'GET' && sub === undefined) return ['GetDeployment', () => getDeployment(id)];
      if (method === 'POST' && sub === 'cancel') return ['CancelDeployment', () => cancelDeployment(id)];
    }
    if (extra === undefined && collection === 'coreDevices' && method === 'GET') {
      if (id === undefined) return ['ListCoreDevices', () => listCoreDevices(q)];
      if (sub === undefined) return ['GetCoreDevice', () => getCoreDevice(id)];
      if (sub === 'effectiveDeployments') return ['ListEffectiveDeployments', () => listEffectiveDeployments(id, q)];
      if (sub === 'installedComponents') return ['ListInstalledComponents', () => listInstalledComponents(id, q)];
    }
    return ['Unknown', () => notFoundRoute(method, path)];
  }

  async function control(cmd: ControlCommand): Promise<void> {
    switch (cmd.action) {
      case 'registerCoreDevice':
        registered.add(cmd.thingName);
        knownCache = null;
        device(cmd.thingName);
        break;
      case 'setThingGroup':
        groups.set(cmd.name, new Set(cmd.thingNames));
        break;
      case 'failDevice':
        faults.failing.set(cmd.thingName, cmd.reason ?? '');
        break;
      case 'stallDevice':
        faults.stalled.add(cmd.thingName);
        break;
      case 'recoverDevice':
        faults.failing.delete(cmd.thingName);
        faults.stalled.delete(cmd.thingName);
        break;
      case 'setComponentState': {
        const d = device(cmd.thingName);
        const c = d.installed[cmd.componentName];
        d.installed[cmd.componentName] = { componentVersion: c?.componentVersion ?? '0.0.0', lifecycleState: cmd.lifecycleState, lastStatusChangeAt: Date.now() };
        d.lastStatusUpdateAt = Date.now();
        if (cmd.lifecycleState === 'BROKEN' || cmd.lifecycleState === 'ERRORED') d.status = 'UNHEALTHY';
        break;
      }
      case 'throttle':
        faults.throttle = cmd.requests;
        faults.throttlePath = cmd.pathContains ?? '';
        break;
      case 'internalError':
        faults.internalError = cmd.requests;
        break;
      case 'loseCreateResponses':
        faults.loseCreateResponses = cmd.requests;
        break;
      case 'delayCreate':
        faults.createDelayMs = cmd.ms;
        break;
      case 'rejectComponent':
        faults.rejectedComponents.add(cmd.componentName);
        break;
      case 'reset':
        Object.assign(faults, freshFaults());
        break;
      default:
        throw new GreengrassError(400, 'ValidationException', `unknown control action ${(cmd as { action: string }).action}`);
    }
    dirty = true;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const text = await readBody(req);
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      return send(res, 400, { message: 'body is not JSON' }, 'SerializationException');
    }
    if (url.pathname === '/_control' && req.method === 'POST') {
      await control(body as ControlCommand);
      return send(res, 200, { ok: true });
    }
    if (url.pathname === '/_control' && req.method === 'GET') {
      const pending = { throttle: faults.throttle, internalError: faults.internalError, loseCreateResponses: faults.loseCreateResponses };
      return send(res, 200, { deployments, devices: Object.fromEntries(devices), requests: counts, pendingFaults: pending });
    }
    const [operation, run] = await route(req.method ?? 'GET', url.pathname, url.searchParams, body);
    counts[operation] = (counts[operation] ?? 0) + 1;
    if (faults.throttle > 0 && url.pathname.includes(faults.throttlePath)) {
      faults.throttle -= 1;
      return send(res, 429, { message: 'Rate exceeded' }, 'ThrottlingException', { 'retry-after': '1' });
    }
    if (faults.internalError > 0) {
      faults.internalError -= 1;
      return send(res, 500, { message: 'Internal service failure' }, 'InternalServerException');
    }
    const [status, payload] = await run();
    send(res, status, payload);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof GreengrassError) send(res, error.status, { message: error.message, ...error.extra }, error.type);
      else send(res, 500, { message: String(error) }, 'InternalServerException');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    region,
    accountId,
    control,
    deployments: () => structuredClone(deployments),
    requestCounts: () => ({ ...counts }),
    pendingFaults: () => ({ throttle: faults.throttle, internalError: faults.internalError, loseCreateResponses: faults.loseCreateResponses }),
    stop: async () => {
      clearInterval(ticker);
      if (options.stateFile && dirty) save();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function freshFaults(): Faults {
  return { failing: new Map(), stalled: new Set(), throttle: 0, throttlePath: '', internalError: 0, loseCreateResponses: 0, createDelayMs: 0, rejectedComponents: new Set() };
}

function validation(message: string, field: string): GreengrassError {
  return new GreengrassError(400, 'ValidationException', message, { reason: 'FIELD_VALIDATION_FAILED', fields: [{ name: field, message }] });
}

function notFoundRoute(method: string, path: string): [number, unknown] {
  throw new GreengrassError(404, 'UnknownOperationException', `No operation for ${method} ${path}`);
}

function paginate<T>(items: T[], q: URLSearchParams): { items: T[]; nextToken?: string } {
  const start = Number(q.get('nextToken') ?? '0') || 0;
  const size = Math.min(Math.max(Number(q.get('maxResults') ?? '50') || 50, 1), 100);
  const next = start + size;
  return { items: items.slice(start, next), nextToken: next < items.length ? String(next) : undefined };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, {
    'content-type': 'application/json',
    'x-amzn-requestid': randomUUID(),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
    ...headers,
  });
  res.end(JSON.stringify(body));
}
