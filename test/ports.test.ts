import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, portsOutsideEphemeralRange } from '../infra/ports';

describe('freePort', () => {
  it('chooses below the range the OS hands out for listen(0) and outgoing connections', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ports-'));
    const rangeFile = join(dir, 'range');
    writeFileSync(rangeFile, '32768\t60999\n');
    expect(portsOutsideEphemeralRange(rangeFile)).toEqual([10_000, 32_767]);
    writeFileSync(rangeFile, '1024\t65535\n');
    expect(portsOutsideEphemeralRange(rangeFile)).toEqual([1024, 65_535]);
    expect(portsOutsideEphemeralRange(join(dir, 'missing'))).toEqual([10_000, 32_767]);
  });

  it('hands out distinct ports that a server can listen on', async () => {
    const high = portsOutsideEphemeralRange()[1];
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(new Set(ports).size).toBe(20);
    for (const port of ports) expect(port).toBeLessThanOrEqual(high);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ports[0], '127.0.0.1', () => resolve());
    });
    await new Promise((resolve) => server.close(resolve));
  });
});
