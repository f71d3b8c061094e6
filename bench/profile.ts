// Where the time goes in a V8 .cpuprofile (node --cpu-prof): self time per
// function and per area (hearth, uWS, msgpackr, node internals, GC, idle).
// CLI: node dist/bench/profile.js <file.cpuprofile> [top=25]
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame }
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

export interface ProfileEntry {
  readonly name: string
  readonly where: string
  readonly area: string
  readonly selfMs: number
  /** % of the non-idle time */
  readonly pct: number
}

export interface ProfileSummary {
  readonly file: string
  /** the part of the profile summarized (all of it, or the load window) */
  readonly wallMs: number
  /** sampled time outside (idle) */
  readonly busyMs: number
  readonly areas: ReadonlyArray<{ area: string, selfMs: number, pct: number }>
  readonly top: readonly ProfileEntry[]
}

function area (f: CallFrame): string {
  const url = f.url
  if (url === '') {
    if (f.functionName.startsWith('(')) return f.functionName // (garbage collector), (program), (idle)
    return 'native (V8 builtins, syscalls behind them)'
  }
  if (url.includes('/dist/daemon/')) return 'hearth daemon'
  if (url.includes('uWebSockets.js') || url.includes('/uwebsockets')) return 'uWebSockets.js'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return `npm: ${pkg[1] as string}`
  if (url.startsWith('node:')) return 'node core (js)'
  return 'other'
}

function where (f: CallFrame): string {
  if (f.url === '') return ''
  const short = f.url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/')
  return `${short}:${f.lineNumber + 1}`
}

const round = (x: number): number => Math.round(x * 10) / 10

/**
 * `window`: only samples taken between these CLOCK_MONOTONIC microseconds (the
 * clock of V8's profile timestamps and of process.hrtime), e.g. the load run,
 * leaving out start-up and shutdown.
 */
export function summarizeProfile (file: string, topN = 25, window?: { fromUs: number, toUs: number }): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  const from = window?.fromUs ?? -Infinity
  const to = window?.toUs ?? Infinity
  let t = profile.startTime
  // timeDeltas[i] is the time since the previous sample: charge it to sample i.
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0
    t += delta
    if (t < from || t > to) continue
    const id = profile.samples[i] as number
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta)
  }
  const fns = new Map<string, { name: string, where: string, area: string, us: number }>()
  const areas = new Map<string, number>()
  let busy = 0
  for (const [id, us] of selfUs) {
    const f = (byId.get(id) as ProfileNode).callFrame
    const a = area(f)
    if (a === '(idle)') continue
    busy += us
    areas.set(a, (areas.get(a) ?? 0) + us)
    const key = `${f.functionName}@${f.url}:${f.lineNumber}`
    const entry = fns.get(key) ?? { name: f.functionName === '' ? '(anonymous)' : f.functionName, where: where(f), area: a, us: 0 }
    entry.us += us
    fns.set(key, entry)
  }
  const pct = (us: number): number => round(busy === 0 ? 0 : us / busy * 100)
  return {
    file,
    wallMs: round((Math.min(to, profile.endTime) - Math.max(from, profile.startTime)) / 1000),
    busyMs: round(busy / 1000),
    areas: [...areas].sort((a, b) => b[1] - a[1]).map(([a, us]) => ({ area: a, selfMs: round(us / 1000), pct: pct(us) })),
    top: [...fns.values()].sort((a, b) => b.us - a.us).slice(0, topN)
      .map((e) => ({ name: e.name, where: e.where, area: e.area, selfMs: round(e.us / 1000), pct: pct(e.us) }))
  }
}

export function formatProfile (s: ProfileSummary): string {
  const lines = [`${s.file}: ${s.wallMs} ms wall, ${s.busyMs} ms busy (not idle)`, '', 'self time by area:']
  for (const a of s.areas) lines.push(`  ${String(a.pct).padStart(5)} %  ${String(a.selfMs).padStart(9)} ms  ${a.area}`)
  lines.push('', 'top functions by self time:')
  for (const e of s.top) lines.push(`  ${String(e.pct).padStart(5)} %  ${String(e.selfMs).padStart(9)} ms  ${e.name}  ${e.where}`)
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/profile.js <file.cpuprofile> [top]\n')
    process.exitCode = 2
  } else {
    process.stdout.write(formatProfile(summarizeProfile(file, Number(process.argv[3] ?? 25))) + '\n')
  }
}
