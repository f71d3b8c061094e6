// CPU and memory of a server process (and of its whole process tree) from /proc.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

let ticksPerSecond = 0
function clockTicks (): number {
  if (ticksPerSecond === 0) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticksPerSecond = 100 // USER_HZ on every Linux architecture Node runs on
    }
  }
  return ticksPerSecond
}

interface Stat { pid: number, ppid: number, self: number, children: number }

/** utime+stime (own) and cutime+cstime (reaped children), in seconds. */
function readStat (pid: number): Stat | null {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch {
    return null
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const n = (i: number): number => Number(f[i - 3])
  const hz = clockTicks()
  return { pid, ppid: n(4), self: (n(14) + n(15)) / hz, children: (n(16) + n(17)) / hz }
}

function allStats (): Stat[] {
  const out: Stat[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const s = readStat(Number(name))
    if (s !== null) out.push(s)
  }
  return out
}

function descendants (root: number, stats: readonly Stat[]): Stat[] {
  const byParent = new Map<number, Stat[]>()
  for (const s of stats) {
    const list = byParent.get(s.ppid)
    if (list === undefined) byParent.set(s.ppid, [s])
    else list.push(s)
  }
  const out: Stat[] = []
  const stack = [root]
  while (stack.length > 0) {
    for (const child of byParent.get(stack.pop() as number) ?? []) {
      out.push(child)
      stack.push(child.pid)
    }
  }
  return out
}

/** kB of a `Vm*:` line of /proc/<pid>/status, 0 when the process is gone. */
export function statusKb (pid: number, field = 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
    return m === null ? 0 : Number(m[1])
  } catch {
    return 0
  }
}

export interface CpuSnapshot {
  readonly at: number // seconds, monotonic
  readonly pid: number
  /** the server process alone, seconds */
  readonly server: number
  /** every process of the tree (server included): own + reaped children's time, seconds */
  readonly tree: ReadonlyMap<number, { readonly ppid: number, readonly total: number }>
  /** busy and total jiffies of the whole machine (/proc/stat) */
  readonly machineBusy: number
  readonly machineTotal: number
}

function machine (): { busy: number, total: number } {
  const line = readFileSync('/proc/stat', 'latin1').split('\n')[0] ?? ''
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const total = v.reduce((a, b) => a + b, 0)
  const idle = (v[3] ?? 0) + (v[4] ?? 0) // idle + iowait
  return { busy: total - idle, total }
}

export function cpuSnapshot (pid: number): CpuSnapshot {
  const stats = allStats()
  const root = stats.find((s) => s.pid === pid)
  const tree = new Map<number, { ppid: number, total: number }>()
  for (const s of root === undefined ? [] : [root, ...descendants(pid, stats)]) tree.set(s.pid, { ppid: s.ppid, total: s.self + s.children })
  const m = machine()
  return { at: performance.now() / 1000, pid, server: root?.self ?? 0, tree, machineBusy: m.busy, machineTotal: m.total }
}

export interface CpuUsage {
  /** % of one core used by the server process over the interval */
  readonly serverPct: number
  /**
   * % of one core used by the server and everything it started (sandboxes,
   * redis). A process that ended is counted through its parent's cutime/cstime
   * when a process of the tree reaped it; the CPU of a sandbox killed together
   * with its parents (reaped outside the tree) after the first snapshot is missed.
   */
  readonly treePct: number
  /** % of the whole machine busy (100 = every core), load generator included */
  readonly machinePct: number
}

/** CPU seconds the tree used between two snapshots. */
function treeSeconds (a: CpuSnapshot, b: CpuSnapshot): number {
  let used = 0
  for (const [pid, now] of b.tree) used += now.total - (a.tree.get(pid)?.total ?? 0)
  // Ended processes reaped by a live member of the tree: their parent's cutime
  // now holds their whole life, of which the part before `a` was already counted.
  for (const [pid, before] of a.tree) {
    if (!b.tree.has(pid) && b.tree.has(before.ppid)) used -= before.total
  }
  return Math.max(0, used)
}

/** CPU seconds between two snapshots (jiffies for the machine). */
export interface CpuDelta {
  readonly wall: number
  readonly server: number
  readonly tree: number
  readonly machineBusy: number
  readonly machineTotal: number
}

export function cpuDelta (a: CpuSnapshot, b: CpuSnapshot): CpuDelta {
  return {
    wall: Math.max(b.at - a.at, 1e-6),
    server: b.server - a.server,
    tree: treeSeconds(a, b),
    machineBusy: b.machineBusy - a.machineBusy,
    machineTotal: b.machineTotal - a.machineTotal
  }
}

/** Usage over one or more intervals (the rounds of a scenario). */
export function cpuUsage (deltas: readonly CpuDelta[]): CpuUsage {
  const sum = (f: (d: CpuDelta) => number): number => deltas.reduce((t, d) => t + f(d), 0)
  const wall = Math.max(sum((d) => d.wall), 1e-6)
  const round = (x: number): number => Math.round(x * 10) / 10
  return {
    serverPct: round(sum((d) => d.server) / wall * 100),
    treePct: round(sum((d) => d.tree) / wall * 100),
    machinePct: round(sum((d) => d.machineBusy) / Math.max(sum((d) => d.machineTotal), 1) * 100)
  }
}

export function cpuBetween (a: CpuSnapshot, b: CpuSnapshot): CpuUsage {
  return cpuUsage([cpuDelta(a, b)])
}

/** VmRSS of the server, and the sum over its tree (shared pages count once per process). */
export function treeRssKb (pid: number): { server: number, tree: number } {
  const server = statusKb(pid)
  let tree = server
  for (const d of descendants(pid, allStats())) tree += statusKb(d.pid)
  return { server, tree }
}

/** Samples the server's VmRSS while a run lasts; stop() gives the peak in kB. */
export function sampleRss (pid: number, everyMs = 250): { stop: () => number } {
  let peak = statusKb(pid)
  const timer = setInterval(() => { peak = Math.max(peak, statusKb(pid)) }, everyMs)
  return {
    stop () {
      clearInterval(timer)
      return Math.max(peak, statusKb(pid))
    }
  }
}
