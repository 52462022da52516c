import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A port on 127.0.0.1 that is free now and that nothing else will be handed by the OS: it lies
 * below the ephemeral range, from which the OS picks ports for `listen(0)` and outgoing
 * connections. A port from that range could be taken between our choosing and the server's
 * listening: the Temporal dev server picks its own internal ports that way (one took the MQTT
 * broker's port in a CI run).
 */
export async function freePort(): Promise<number> {
  const [low, high] = portsOutsideEphemeralRange();
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found between ${low} and ${high}`);
}

const handedOut = new Set<number>();

export function portsOutsideEphemeralRange(rangeFile = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] {
  // Linux's default range; macOS's (49152-65535) lies above it, so the same choice holds there.
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(readFileSync(rangeFile, 'utf8').trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    // no /proc: keep the default
  }
  // A range that starts this low leaves no room below it: choose anywhere, as listen(0) would.
  return ephemeralLow > 11_000 ? [10_000, ephemeralLow - 1] : [1024, 65_535];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
