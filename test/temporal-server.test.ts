import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTemporalCli, startTemporalDevServer } from '../infra/temporal-server';
import { freePort } from '../infra/ports';

/**
 * The dev server is started once more when it exits while starting (it once panicked wiring
 * itself up on a restart in CI), and the reason is kept: a Go panic's first line, not only the
 * end of its stack. The CLI stands behind a script that fails as often as it is told to.
 */

let dir: string;
beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'temporal-start-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A CLI that panics `failures` times (a panic line, then a long stack), then is the real one. */
function flakyCli(failures: number): string {
  const real = findTemporalCli();
  if (!real) throw new Error('the Temporal CLI is not built (global setup builds it)');
  const script = join(dir, 'temporal');
  writeFileSync(
    script,
    `#!/bin/sh
n=$(cat "${dir}/tries" 2>/dev/null || echo 0); echo $((n + 1)) > "${dir}/tries"
if [ "$n" -lt ${failures} ]; then
  echo "panic: wiring failed on try $((n + 1))" >&2
  i=0; while [ $i -lt 300 ]; do echo "go.uber.org/dig.paramList.BuildList(...) frame $i" >&2; i=$((i + 1)); done
  exit 2
fi
exec "${real}" "$@"
`,
  );
  chmodSync(script, 0o755);
  return script;
}

test('a dev server that exits while starting is started once more, its reason warned', async () => {
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const server = await startTemporalDevServer({ cliPath: flakyCli(1), port: await freePort(), dbFile: join(dir, 'temporal.db'), fast: true });
  try {
    expect(server.process.exitCode).toBeNull();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('panic: wiring failed on try 1'));
  } finally {
    await server.stop();
    warn.mockRestore();
  }
}, 90_000);

test('a dev server that exits on both tries fails with the first line of its panic', async () => {
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    await expect(startTemporalDevServer({ cliPath: flakyCli(2), port: await freePort(), dbFile: join(dir, 'temporal.db') })).rejects.toThrow(
      'panic: wiring failed on try 2',
    );
    expect(readFileSync(join(dir, 'tries'), 'utf8').trim()).toBe('2');
  } finally {
    warn.mockRestore();
  }
}, 30_000);
