import type { RequestHandler } from 'express';
import { ApiError } from './errors';

/**
 * A method a known path does not serve is a 405 with `Allow` listing the ones it does, read from
 * the routes the app has registered and matched as Express matches them. Mounted before
 * authentication, so the answer is the same with or without a key; unknown paths go on to the 404.
 */

type Layer = {
  match(path: string): false | { path: string };
  route?: { methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
};

export const methodNotAllowed: RequestHandler = (req, res, next) => {
  // Express answers OPTIONS itself, with the same Allow list.
  if (req.method === 'OPTIONS') return next();
  const allowed = methodsServed((req.app as unknown as { router: { stack: Layer[] } }).router.stack, req.path);
  if (allowed.size === 0 || allowed.has(req.method) || allowed.has('*')) return next();
  const allow = [...allowed].sort((a, b) => order(a) - order(b)).join(', ');
  res.set('Allow', allow);
  throw new ApiError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${req.path}; it answers ${allow}`);
};

const ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
const order = (method: string) => (ORDER.includes(method) ? ORDER.indexOf(method) : ORDER.length);

function methodsServed(stack: Layer[], path: string, found = new Set<string>()): Set<string> {
  for (const layer of stack) {
    let match: ReturnType<Layer['match']>;
    try {
      match = layer.match(path);
    } catch {
      // A parameter that is not valid percent-encoding: the router answers that with its 400.
      continue;
    }
    if (!match) continue;
    if (layer.route) {
      for (const [method, served] of Object.entries(layer.route.methods)) if (served) found.add(method === '_all' ? '*' : method.toUpperCase());
      // Express serves HEAD wherever it serves GET.
      if (found.has('GET')) found.add('HEAD');
    } else if (layer.handle?.stack) {
      methodsServed(layer.handle.stack, path.slice(match.path.length) || '/', found);
    }
  }
  return found;
}
