import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Config } from '../config';
import { permissionDenied, unauthenticated } from './errors';

/** API keys from `API_KEYS` (`key:scope[,scope]`, `;`-separated), kept only as sha256 hashes. */

export const scopes = ['read', 'operate', 'deploy'] as const;
export type Scope = (typeof scopes)[number];
export type ApiKey = { hash: Buffer; scopes: ReadonlySet<Scope> };

const sha256 = (text: string) => createHash('sha256').update(text).digest();
const isScope = (s: string): s is Scope => (scopes as readonly string[]).includes(s);

/** Messages name the entry by position, never by key: keys are secrets. */
export function parseApiKeys(text: string): ApiKey[] {
  const entries = text.split(';').map((e) => e.trim()).filter(Boolean);
  if (entries.length === 0) throw new Error('API_KEYS: no key given');
  return entries.map((entry, i) => {
    const colon = entry.lastIndexOf(':');
    const key = entry.slice(0, colon).trim();
    const granted = entry.slice(colon + 1).split(',').map((s) => s.trim()).filter(Boolean);
    if (colon <= 0 || key === '') throw new Error(`API_KEYS: entry ${i + 1} is not key:scope[,scope]`);
    if (granted.length === 0) throw new Error(`API_KEYS: entry ${i + 1} has no scope`);
    const unknown = granted.find((s) => !isScope(s));
    if (unknown !== undefined) throw new Error(`API_KEYS: entry ${i + 1} has unknown scope "${unknown}" (scopes: ${scopes.join(', ')})`);
    return { hash: sha256(key), scopes: new Set(granted as Scope[]) };
  });
}

let generatedKey: string | undefined;

/** The process's development key, used when API_KEYS is unset; the entry point prints it. */
export function developmentKey(): string {
  generatedKey ??= `dev-${randomBytes(24).toString('base64url')}`;
  return generatedKey;
}

export function apiKeysFromConfig(config: Pick<Config, 'API_KEYS'>): ApiKey[] {
  if (config.API_KEYS) return parseApiKeys(config.API_KEYS);
  return [{ hash: sha256(developmentKey()), scopes: new Set(scopes) }];
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

export function requireScope(scope: Scope): RequestHandler {
  return (_req, res, next) => {
    const granted = res.locals.scopes as ReadonlySet<Scope> | undefined;
    if (!granted?.has(scope)) throw permissionDenied(`this API key lacks the "${scope}" scope`);
    next();
  };
}
