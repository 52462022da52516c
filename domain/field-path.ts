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
