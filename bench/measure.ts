// Measuring one scenario against one server: a sanity request, warm-up, the
// load with the server's CPU, RSS and sandboxes counted, and the scenario
// recorded (every scenario of the run ends up in \`scenarios\`).
import { formatMs } from './chart.js'
import { runLoad, runLoadPart, summarize, type LoadPart, type LoadSpec } from './load.js'
import { cpuDelta, cpuSnapshot, cpuUsage, sampleRss, treeRssKb, type CpuDelta } from './procstat.js'
import type { Group, Scenario } from './report.js'
import type { Server } from './servers.js'
import type { Language } from '../daemon/config.js'
import { EXPECTED } from './workload.js'

const started = Date.now()
const progress = process.stderr.isTTY === true

/** Every scenario measured so far, in order. */
export const scenarios: Scenario[] = []

/** A line of the run's output, with the seconds since it started. */
export function say (line: string): void {
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`)
}

export function elapsedSeconds (): number {
  return (Date.now() - started) / 1000
}

/** One request first: a server that answers wrongly is a broken bench, not a slow server. */
export async function sanity (server: Server, url: string, body: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const text = await res.text()
  if (res.status !== 200 || text !== EXPECTED) throw new Error(`${server.kind} ${url} answered ${res.status} ${text}\n${server.logTail()}`)
}

/** A measured scenario: what load.ts runs (url, paths, rate, body, connections, duration), named and grouped. */
export interface Def extends Pick<LoadSpec, 'url' | 'paths' | 'rate' | 'body' | 'connections' | 'duration'> {
  readonly name: string
  readonly group: Group
  readonly language: Language | null
  readonly warmup: number
  /** another server than the one measured alongside (measureInterleaved: a second daemon) */
  readonly server?: Server
}

/** One measured run of a scenario, raw. */
interface Part {
  readonly load: LoadPart
  readonly cpu: CpuDelta
  readonly loadgenUs: number
  readonly rssPeakKb: number
  readonly rss: { server: number, tree: number }
  readonly spawned: number
}

/** The load generator's per-request timeout, seconds (BENCH_TIMEOUT): set once by run.ts. */
let timeout = 10

export function setRequestTimeout (seconds: number): void {
  timeout = seconds
}

function specOf (d: Def): LoadSpec {
  return { title: d.name, url: d.url, paths: d.paths, rate: d.rate, body: d.body, connections: d.connections, duration: d.duration, timeout, expectBody: EXPECTED }
}

async function measurePart (server: Server, d: Def, duration: number): Promise<Part> {
  const spawned0 = await server.spawned()
  const cpu0 = cpuSnapshot(server.pid)
  const lg0 = process.cpuUsage()
  const rss = sampleRss(server.pid)
  const load = await runLoadPart({ ...specOf(d), duration, progress })
  const cpu1 = cpuSnapshot(server.pid)
  const lg = process.cpuUsage(lg0)
  const rssPeakKb = rss.stop()
  return { load, cpu: cpuDelta(cpu0, cpu1), loadgenUs: lg.user + lg.system, rssPeakKb, rss: treeRssKb(server.pid), spawned: await server.spawned() - spawned0 }
}

function record (server: Server, d: Def, parts: readonly Part[]): Scenario {
  const load = summarize(parts.map((p) => p.load))
  const cpu = cpuUsage(parts.map((p) => p.cpu))
  const wall = parts.reduce((t, p) => t + p.cpu.wall, 0)
  const ok = parts.reduce((t, p) => t + p.load.ok, 0)
  const perRequest = (pct: number): number => ok > 0 ? Math.round(pct / 100 * wall * 1e6 / ok * 10) / 10 : 0
  const last = parts[parts.length - 1] as Part
  const s: Scenario = {
    name: d.name,
    group: d.group,
    server: server.kind,
    language: d.language,
    rounds: parts.length,
    ...load,
    cpu: {
      ...cpu,
      loadgenPct: Math.round(parts.reduce((t, p) => t + p.loadgenUs, 0) / 1e6 / wall * 1000) / 10,
      serverUsPerRequest: perRequest(cpu.serverPct),
      treeUsPerRequest: perRequest(cpu.treePct)
    },
    rss: { serverKb: last.rss.server, serverPeakKb: Math.max(...parts.map((p) => p.rssPeakKb)), treeKb: last.rss.tree },
    sandboxesSpawned: parts.reduce((t, p) => t + p.spawned, 0)
  }
  say(`${d.name.padEnd(20)} c=${String(d.connections).padEnd(3)} ${String(s.rps).padStart(9)} req/s  p50 ${formatMs(s.latency.p50)}  p90 ${formatMs(s.latency.p90)}  p99 ${formatMs(s.latency.p99)}  max ${formatMs(s.latency.max)}  errors ${s.errors + s.mismatches}  non-2xx ${s.non2xx}  server CPU ${s.cpu.serverPct} %  spawned ${s.sandboxesSpawned}`)
  scenarios.push(s)
  return s
}

export async function measure (server: Server, d: Def): Promise<Scenario> {
  await sanity(server, d.url, d.body)
  if (d.warmup > 0) await runLoad({ ...specOf(d), duration: d.warmup })
  return record(server, d, [await measurePart(server, d, d.duration)])
}

/**
 * Scenarios compared with each other (python, javascript, typescript) run in
 * interleaved rounds, each round a share of the duration, so that neither
 * order (a daemon whose JIT warmed up on the first) nor a burst of other work
 * on the machine favours one of them.
 */
export async function measureInterleaved (server: Server, defs: readonly Def[], rounds: number): Promise<void> {
  const parts = defs.map((): Part[] => [])
  for (let r = 0; r < rounds; r++) {
    for (const [i, d] of defs.entries()) {
      const srv = d.server ?? server
      if (r === 0) {
        await sanity(srv, d.url, d.body)
        if (d.warmup > 0) await runLoad({ ...specOf(d), duration: d.warmup })
      }
      parts[i]?.push(await measurePart(srv, d, d.duration / rounds))
    }
  }
  for (const [i, d] of defs.entries()) record(d.server ?? server, d, parts[i] as Part[])
}

export async function withServer<T extends Server> (start: () => Promise<T>, body: (server: T) => Promise<void>): Promise<void> {
  const server = await start()
  try {
    await body(server)
  } finally {
    const code = await server.stop()
    if (code !== 0) say(`${server.kind} exited with ${String(code)}:\n${server.logTail()}`)
  }
}
