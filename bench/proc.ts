import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Sample, SamplerStart } from './proc-sampler';

/**
 * CPU and memory of a process and its descendants from /proc (Linux): postgres forks a backend
 * per connection and `tsx` may run its script in a child, so a piece is its whole tree.
 */

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on every Linux we run on

/** `pssMb` is null in a sample taken without memory (reading smaps_rollup is the costly part). */
export type TreeUsage = { cpuMs: number; pssMb: number | null; processes: number };

type Stat = { pid: number; ppid: number; cpuTicks: number; childTicks: number };

function readStat(pid: number): Stat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const n = (i: number) => Number(fields[i - 3]);
    return { pid, ppid: n(4), cpuTicks: n(14) + n(15), childTicks: n(16) + n(17) };
  } catch {
    return null;
  }
}

function readPssKb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function allStats(): Map<number, Stat> {
  const stats = new Map<number, Stat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) stats.set(s.pid, s);
  }
  return stats;
}

/**
 * A share of one named tree: its processes (not the root) whose command line matches. PostgreSQL
 * names each backend's database there (`postgres: <user> <database> <client> <state>`), which
 * tells the projection's backends from a Temporal server's on the same PostgreSQL. The CPU of
 * backends that exited counts in the root's, not in a share.
 */
export type TreeShare = { of: string; cmdline: string };

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** Usage of each named tree, then of each share, at this moment (CPU is cumulative since each process started). */
export function sampleTrees(roots: Record<string, number>, withMemory = true, shares: Record<string, TreeShare> = {}): Record<string, TreeUsage> {
  const stats = allStats();
  const children = new Map<number, number[]>();
  for (const s of stats.values()) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  const out: Record<string, TreeUsage> = {};
  const shareTicks = Object.fromEntries(Object.keys(shares).map((name) => [name, { ticks: 0, processes: 0 }]));
  for (const [name, root] of Object.entries(roots)) {
    const mine = Object.entries(shares).filter(([, share]) => share.of === name).map(([shareName, share]) => ({ name: shareName, pattern: new RegExp(share.cmdline) }));
    let ticks = 0;
    let pssKb = 0;
    let processes = 0;
    const walk = (pid: number, isRoot: boolean) => {
      const s = stats.get(pid);
      if (!s) return;
      // Children that already exited are counted in their parent's cutime/cstime.
      ticks += s.cpuTicks + (isRoot ? s.childTicks : 0);
      if (withMemory) pssKb += readPssKb(pid);
      processes += 1;
      if (!isRoot && mine.length > 0) {
        const cmdline = readCmdline(pid);
        for (const share of mine.filter((m) => m.pattern.test(cmdline))) {
          shareTicks[share.name].ticks += s.cpuTicks;
          shareTicks[share.name].processes += 1;
        }
      }
      for (const c of children.get(pid) ?? []) walk(c, false);
    };
    walk(root, true);
    out[name] = { cpuMs: (ticks * 1000) / TICKS_PER_SECOND, pssMb: withMemory ? pssKb / 1024 : null, processes };
  }
  for (const [name, { ticks, processes }] of Object.entries(shareTicks)) out[name] = { cpuMs: (ticks * 1000) / TICKS_PER_SECOND, pssMb: null, processes };
  return out;
}

/** Inodes of a process's open sockets. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/** TCP sockets in LISTEN state as seen from a process's network namespace: port and inode. */
function listeningSockets(pid: number | 'self'): { port: number; inode: string }[] {
  const out: { port: number; inode: string }[] = [];
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A') out.push({ port: parseInt(f[1].split(':').pop()!, 16), inode: f[9] });
    }
  }
  return out;
}

/** The TCP ports a process listens on (Linux /proc). */
export function listeningPorts(pid: number): number[] {
  const inodes = socketInodes(pid);
  return [...new Set(listeningSockets(pid).filter((s) => inodes.has(s.inode)).map((s) => s.port))];
}

/** The process that listens on a TCP port, e.g. RabbitMQ's node on AMQP's port; null if none is found. */
export function pidListeningOn(port: number): number | null {
  const inodes = new Set(listeningSockets('self').filter((s) => s.port === port).map((s) => s.inode));
  if (inodes.size === 0) return null;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    for (const inode of socketInodes(Number(name))) if (inodes.has(inode)) return Number(name);
  }
  return null;
}

/**
 * Samples the trees every `everyMs` from a child process (bench/proc-sampler.ts), so that reading
 * /proc never blocks the caller's event loop; `between(a, b)` gives CPU used and peak memory in a window.
 */
export class ProcessSampler {
  private samples: Sample[] = [];
  private child: ChildProcess | null = null;

  constructor(private readonly roots: Record<string, number>, private readonly everyMs = 1000, private readonly shares: Record<string, TreeShare> = {}) {}

  start(): void {
    this.child = fork(join(__dirname, 'proc-sampler.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (sample: Sample) => void this.samples.push(sample));
    this.child.send({ roots: this.roots, everyMs: this.everyMs, shares: this.shares } satisfies SamplerStart);
  }

  /** Takes a last sample and ends the sampler's process. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || !child.connected) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const timeout = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.send('stop');
    await exited;
    clearTimeout(timeout);
  }

  /** CPU seconds, CPU share of one core, and peak PSS of each tree (and share) between two times. */
  between(from: number, to: number): Record<string, { cpuSeconds: number; cpuPercent: number; peakMemoryMb: number }> {
    const inWindow = this.samples.filter((s) => s.at >= from - this.everyMs && s.at <= to + this.everyMs);
    const first = inWindow[0];
    const last = inWindow[inWindow.length - 1];
    const out: Record<string, { cpuSeconds: number; cpuPercent: number; peakMemoryMb: number }> = {};
    if (!first || !last) return out;
    const seconds = Math.max((last.at - first.at) / 1000, 0.001);
    for (const name of [...Object.keys(this.roots), ...Object.keys(this.shares)]) {
      // A piece that exited inside the window (the load generator does) counts up to its last sample.
      const alive = inWindow.filter((s) => (s.usage[name]?.processes ?? 0) > 0);
      const cpuSeconds = ((alive[alive.length - 1]?.usage[name].cpuMs ?? 0) - (alive[0]?.usage[name].cpuMs ?? 0)) / 1000;
      out[name] = {
        cpuSeconds: round(cpuSeconds, 2),
        cpuPercent: round((cpuSeconds / seconds) * 100, 1),
        peakMemoryMb: round(Math.max(...inWindow.map((s) => s.usage[name]?.pssMb ?? 0)), 1),
      };
    }
    return out;
  }
}

export const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
