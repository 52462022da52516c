import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { Heartbeat } from './heartbeat';

/**
 * How PINs are kept out of sight. A PIN is turned into an HMAC-SHA256 keyed with PIN_HASH_SECRET
 * (and salted with the robot's serial) where it enters the backend: the ingest worker for keypad
 * entries, the API for set and validate. Everything after compares those digests, so the plain PIN
 * reaches neither Temporal history nor the database, logs, events or API answers. Without the
 * secret a 4-digit PIN cannot be recovered from its digest by trying all 10,000. The one place a
 * plain PIN must travel is the Magic Lid SET_PIN command to the robot: there it is sealed
 * (AES-256-GCM) until the activity that publishes the command opens it.
 */

/** Used when PIN_HASH_SECRET is unset (npm start generates and keeps a real one): fine for tests, never for production. */
export const DEVELOPMENT_PIN_HASH_SECRET = 'fleet-development-pin-hash-secret-do-not-use-in-production';

export const pinHashSecret = (config: { PIN_HASH_SECRET?: string }) => config.PIN_HASH_SECRET ?? DEVELOPMENT_PIN_HASH_SECRET;

export function hashPin(secret: string, serial: string, pin: string): string {
  return createHmac('sha256', secret).update(`pin:${serial}:${pin}`).digest('hex');
}

/** Replaces each PIN entry's `pin` with its digest; without a secret the PIN is dropped, never passed on. */
export function protectPins(hb: Heartbeat, secret: string | undefined): Heartbeat {
  if (!hb.events.some((e) => e.pin !== undefined)) return hb;
  return {
    ...hb,
    events: hb.events.map(({ pin, ...e }) => (pin === undefined || secret === undefined ? e : { ...e, pinHash: hashPin(secret, hb.serial, pin) })),
  };
}

const sealKey = (secret: string) => Buffer.from(hkdfSync('sha256', secret, 'fleet-backend', 'sealed command parameters', 32));

export function seal(secret: string, values: Record<string, string>): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(secret), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(values), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

export function unseal(secret: string, sealed: string): Record<string, string> {
  const raw = Buffer.from(sealed, 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', sealKey(secret), raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8'));
}

/** Rejected robot messages are kept for inspection: never with a PIN in them. */
export function redactPins(payload: string): string {
  return payload.replace(/("pin"\s*:\s*)("(?:[^"\\]|\\.)*"|[-+\d.eE]+)/g, '$1"[redacted]"');
}
