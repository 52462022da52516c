import { invalidArgument } from './errors';

/** Opaque page tokens: base64url of the last key of the previous page. */

export const encodePageToken = (lastKey: string) => Buffer.from(lastKey, 'utf8').toString('base64url');

/** Node decodes base64 leniently, so a token is accepted only if it encodes back to itself. */
export function decodePageToken(token: string, isValidKey: (key: string) => boolean): string {
  const key = Buffer.from(token, 'base64url').toString('utf8');
  if (token === '' || encodePageToken(key) !== token || !isValidKey(key)) throw invalidArgument('pageToken', 'malformed page token');
  return key;
}
