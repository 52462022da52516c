import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { Config } from '../config';
import { partnerProviders } from '../activities/partners';
import { permissionDenied, unauthenticated } from './errors';

/**
 * API keys from `API_KEYS` (`key:scope[,scope]`, `;`-separated), kept only as sha256 hashes. The
 * internal scopes are `read`, `operate` and `deploy`; a partner's key has `partner:<provider>`
 * scopes only, which reach GET /v1/partners/{provider}/vehicles/{providerVehicleId} and nothing else.
 */

export const scopes = ['read', 'operate', 'deploy'] as const;
export type InternalScope = (typeof scopes)[number];
export type PartnerScope = `partner:${string}`;
export type Scope = InternalScope | PartnerScope;
export type ApiKey = { hash: Buffer; scopes: ReadonlySet<Scope> };

const sha256 = (text: string) => createHash('sha256').update(text).digest();
export const partnerScope = (provider: string): PartnerScope => `partner:${provider}`;
const partnerScopes = () => partnerProviders.map(partnerScope);
const isPartnerScope = (s: string): s is PartnerScope => (partnerScopes() as string[]).includes(s);
const isScope = (s: string): s is Scope => (scopes as readonly string[]).includes(s) || isPartnerScope(s);

/** A key whose every scope is a partner's: it gets the partners' rate limit. */
export const isPartnerKey = (key: ApiKey) => [...key.scopes].every((s) => s.startsWith('partner:'));

const scopeList = (text: string) => text.split(',').map((s) => s.trim()).filter(Boolean);

/** Scopes hold colons (`partner:uber`), keys may too: the key ends at the first colon after which all is scopes. */
function splitEntry(entry: string): { key: string; granted: Scope[] } | null {
  for (let colon = entry.indexOf(':'); colon > 0; colon = entry.indexOf(':', colon + 1)) {
    const granted = scopeList(entry.slice(colon + 1));
    if (granted.length > 0 && granted.every(isScope)) return { key: entry.slice(0, colon).trim(), granted: granted as Scope[] };
  }
  return null;
}

/** Messages name the entry by position, never by key: keys are secrets. */
export function parseApiKeys(text: string): ApiKey[] {
  const entries = text.split(';').map((e) => e.trim()).filter(Boolean);
  if (entries.length === 0) throw new Error('API_KEYS: no key given');
  return entries.map((entry, i) => {
    const split = splitEntry(entry);
    if (split === null || split.key === '') throw new Error(`API_KEYS: entry ${i + 1} ${whyNot(entry)}`);
    const partner = split.granted.filter((s) => s.startsWith('partner:'));
    if (partner.length > 0 && partner.length < split.granted.length) {
      throw new Error(`API_KEYS: entry ${i + 1} mixes partner scopes with ${scopes.join('/')}: a partner's key has partner scopes only`);
    }
    return { hash: sha256(split.key), scopes: new Set(split.granted) };
  });
}

/** Why an entry does not parse, read from its end so that no part of the key is named. */
function whyNot(entry: string): string {
  const colon = entry.lastIndexOf(':');
  if (colon <= 0 || entry.slice(0, colon).trim() === '') return 'is not key:scope[,scope]';
  const granted = scopeList(entry.slice(colon + 1));
  if (granted.length === 0) return 'has no scope';
  const known = [...scopes, ...partnerScopes()].join(', ');
  const unknown = granted.find((s) => !isScope(s)) ?? granted[0];
  // `partner:lyft` splits at its own colon: name it whole.
  const named = /(^|[:,])\s*partner\s*$/.test(entry.slice(0, colon)) && unknown === granted[0] ? `partner:${unknown}` : unknown;
  return `has unknown scope "${named}" (scopes: ${known})`;
}

let generatedKey: string | undefined;

/** The process's development key, used when API_KEYS is unset; the entry point prints it. */
export function developmentKey(): string {
  generatedKey ??= `dev-${randomBytes(24).toString('base64url')}`;
  return generatedKey;
}

export function apiKeysFromConfig(config: Pick<Config, 'API_KEYS'>): ApiKey[] {
  if (config.API_KEYS) return parseApiKeys(config.API_KEYS);
  return [{ hash: sha256(developmentKey()), scopes: new Set<Scope>(scopes) }];
}

export function findKey(keys: ApiKey[], presented: string): ApiKey | undefined {
  const hash = sha256(presented);
  let found: ApiKey | undefined;
  // Compare against every key so timing says nothing about which, or whether, one matched.
  for (const key of keys) if (timingSafeEqual(hash, key.hash)) found = key;
  return found;
}

export function authenticate(keys: ApiKey[]): RequestHandler {
  return (req, res, next) => {
    const presented = req.get('x-api-key');
    if (!presented) throw unauthenticated('missing x-api-key header');
    const key = findKey(keys, presented);
    if (!key) throw unauthenticated('unknown API key');
    res.locals.scopes = key.scopes;
    next();
  };
}

/** The providers whose vehicles the request's key may look up: all with `read`, else those of its partner scopes. */
export function partnerAccess(res: Response): 'any' | ReadonlySet<string> {
  const granted = res.locals.scopes as ReadonlySet<Scope> | undefined;
  if (granted?.has('read')) return 'any';
  return new Set([...(granted ?? [])].flatMap((s) => (s.startsWith('partner:') ? [s.slice('partner:'.length)] : [])));
}

/** For the partner routes: `read`, or a partner scope (which provider's vehicles it sees is the route's business). */
export function requireReadOrPartner(): RequestHandler {
  return (_req, res, next) => {
    const access = partnerAccess(res);
    if (access !== 'any' && access.size === 0) throw permissionDenied('this API key lacks the "read" scope or a "partner:<provider>" scope');
    next();
  };
}

export function requireScope(scope: InternalScope): RequestHandler {
  return (_req, res, next) => {
    const granted = res.locals.scopes as ReadonlySet<Scope> | undefined;
    if (!granted?.has(scope)) throw permissionDenied(`this API key lacks the "${scope}" scope`);
    next();
  };
}
