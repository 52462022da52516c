import { createHash } from 'node:crypto';

/** The same robot and requestId always name the same command, so a retried POST finds the first one. */
export function commandIdForRequest(serial: string, requestId: string): string {
  const h = createHash('sha256').update(`command:${serial}:${requestId}`).digest('hex');
  // Shaped as a version-8 (custom) UUID, so it fits the uuid column like the random ones.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16], 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
