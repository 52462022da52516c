/**
 * How a rejection names the field it is about: `events.0.pin`, `components.com.coco.Maps.componentVersion`;
 * a key chosen by a robot or client that holds anything else is quoted (`components[":"]`), so a
 * ':' or a space or 10 KiB of text cannot blur which field failed or swell the message.
 */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path.map(segment).join('').replace(/^\./, '') || '(root)';
}

function segment(key: PropertyKey): string {
  const text = String(key);
  if (typeof key === 'number' || /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(text)) return `.${text}`;
  return `[${JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text)}]`;
}

/** The path to the first string or key holding NUL (\u0000), which PostgreSQL text cannot store; nesting past 64 levels is not searched. */
export function pathToNul(value: unknown, path: PropertyKey[] = [], depth = 0): PropertyKey[] | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (value === null || typeof value !== 'object' || depth > 64) return undefined;
  for (const [key, v] of Object.entries(value)) {
    const found = key.includes('\u0000') ? [...path, key] : pathToNul(v, [...path, key], depth + 1);
    if (found) return found;
  }
  return undefined;
}
