// The run's results: their shape, the ratios and targets of issue 5, and the
// markdown tables appended to bench/README.md.
import type { Language } from '../daemon/config.js'
import { formatMs } from './chart.js'
import type { LoadResult } from './load.js'
import type { ProfileSummary } from './profile.js'
import type { CpuUsage } from './procstat.js'
import type { LayerResult } from './sandbox-layer.js'

export type Group = 'bare' | 'warm' | 'target' | 'run-now' | 'distinct' | 'cold'

export interface Scenario extends LoadResult {
  readonly name: string
  readonly group: Group
  readonly server: 'bare-uws' | 'hearth' | 'cold'
  readonly language: Language | null
  /** interleaved rounds the measurement was split into */
  readonly rounds: number
  readonly cpu: CpuUsage & {
    readonly loadgenPct: number
    /** CPU microseconds per successful request: the server alone, and its tree */
    readonly serverUsPerRequest: number
    readonly treeUsPerRequest: number
  }
  readonly rss: { readonly serverKb: number, readonly serverPeakKb: number, readonly treeKb: number }
  /** sandboxes spawned during the measured run (hearth: /readyz pools[].spawned delta) */
  readonly sandboxesSpawned: number
}

export interface SweepPoint {
  readonly warmMaxPerFunction: number
  readonly connections: number
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly errors: number
  readonly non2xx: number
  readonly serverCpuPct: number
  readonly treeCpuPct: number
  readonly machinePct: number
  readonly sandboxesSpawned: number
}

export interface Target {
  readonly id: string
  readonly description: string
  readonly target: string
  readonly value: number | null
  readonly pass: boolean | null
}

export interface Results {
  readonly meta: Record<string, unknown>
  readonly settings: Record<string, unknown>
  readonly scenarios: readonly Scenario[]
  readonly ratios: Record<string, unknown>
  readonly targets: readonly Target[]
  readonly sweep: readonly SweepPoint[]
  /** the sandbox layer without HTTP: spawn-to-ready, warm round trips, the IPC floor */
  readonly sandboxLayer: LayerResult | null
  readonly profile: {
    readonly connections: number
    readonly rps: number
    readonly p50: number
    readonly p99: number
    /** successful requests in the profiled window */
    readonly requests: number
    readonly summary: ProfileSummary
  } | null
}

const LANGS: readonly Language[] = ['python', 'javascript', 'typescript']

function ratio (a: number | undefined, b: number | undefined): number | null {
  if (a === undefined || b === undefined || b <= 0 || a <= 0) return null
  return Math.round(a / b * 1000) / 1000
}

export function computeRatios (scenarios: readonly Scenario[]): Record<string, unknown> {
  const s = (name: string): Scenario | undefined => scenarios.find((x) => x.name === name)
  const byLanguage: Record<string, Record<string, number | null>> = {}
  for (const l of LANGS) {
    byLanguage[l] = {
      warm_vs_cold_throughput: ratio(s(`warm-${l}`)?.rps, s(`cold-${l}`)?.rps),
      warm_vs_bare_uws_throughput: ratio(s(`warm-${l}`)?.rps, s('bare')?.rps),
      cold_vs_warm_p50_latency: ratio(s(`cold-${l}`)?.latency.p50, s(`warm-${l}`)?.latency.p50),
      warm_vs_run_now_throughput: ratio(s(`warm-${l}`)?.rps, s(`run-now-${l}`)?.rps),
      run_now_vs_cold_throughput: ratio(s(`run-now-${l}`)?.rps, s(`cold-${l}`)?.rps)
    }
  }
  const spawn = (name: string): Scenario | undefined => s(`${name}-spawn`)
  const fresh = {
    // issue 9: fresh sandboxes, forked from the zygote, against the cold model and
    // against the same daemon spawning them (ZYGOTE=off), in the same run
    run_now_python_vs_cold_throughput: ratio(s('run-now-python')?.rps, s('cold-python')?.rps),
    run_now_python_vs_spawn_throughput: ratio(s('run-now-python')?.rps, spawn('run-now-python')?.rps),
    run_now_python_c1_vs_spawn_p50_latency: ratio(spawn('run-now-python-c1')?.latency.p50, s('run-now-python-c1')?.latency.p50),
    run_now_python_c1_vs_warm_paced_p50_latency: ratio(s('run-now-python-c1')?.latency.p50, s('warm-python-paced')?.latency.p50),
    distinct_functions_vs_spawn_throughput: ratio(s('distinct-functions')?.rps, spawn('distinct-functions')?.rps),
    run_now_javascript_vs_cold_throughput: ratio(s('run-now-javascript')?.rps, s('cold-javascript')?.rps),
    run_now_typescript_vs_cold_throughput: ratio(s('run-now-typescript')?.rps, s('cold-typescript')?.rps),
    warm_python_forked_vs_spawned_throughput: ratio(s('warm-python')?.rps, spawn('warm-python')?.rps)
  }
  return {
    ...fresh,
    // python warm against python cold / the bare server, each at its own connection count
    warm_vs_cold_throughput: byLanguage.python?.warm_vs_cold_throughput ?? null,
    warm_vs_bare_uws_throughput: byLanguage.python?.warm_vs_bare_uws_throughput ?? null,
    cold_vs_warm_p50_latency: byLanguage.python?.cold_vs_warm_p50_latency ?? null,
    // both at concurrency 1: the intrinsic cost of a call, without queueing
    cold_vs_warm_p50_latency_c1: ratio(s('cold-python-c1')?.latency.p50, s('warm-python-c1')?.latency.p50),
    ts_vs_js_warm_throughput: ratio(s('warm-typescript')?.rps, s('warm-javascript')?.rps),
    by_language: byLanguage
  }
}

export function computeTargets (scenarios: readonly Scenario[], ratios: Record<string, unknown>, c1: number, c32: number): Target[] {
  const s = (name: string): Scenario | undefined => scenarios.find((x) => x.name === name)
  const check = (id: string, description: string, target: string, value: number | null | undefined, ok: (v: number) => boolean): Target =>
    ({ id, description, target, value: value ?? null, pass: value == null ? null : ok(value) })
  const r = (k: string): number | null => (ratios[k] as number | null | undefined) ?? null
  return [
    check('warm_p50_c1_ms', `warm python p50 latency at concurrency ${c1}`, '≤ 1 ms', s('warm-python-c1')?.latency.p50, (v) => v <= 1),
    check('warm_p99_c32_ms', `warm python p99 latency at concurrency ${c32}`, '≤ 5 ms', s('warm-python-c32')?.latency.p99, (v) => v <= 5),
    check('warm_vs_cold_throughput', 'warm python throughput / cold python throughput', '≥ 100×', r('warm_vs_cold_throughput'), (v) => v >= 100),
    check('warm_vs_bare_uws_throughput', 'warm python throughput / bare uWS throughput', '≥ 0.3×', r('warm_vs_bare_uws_throughput'), (v) => v >= 0.3),
    check('ts_vs_js_warm_throughput', 'warm TypeScript throughput / warm JavaScript throughput', '≥ 0.9× (within 10 %)', r('ts_vs_js_warm_throughput'), (v) => v >= 0.9),
    check('run_now_python_vs_cold_throughput', 'run-now python throughput / cold python throughput (c=8)', '≥ 10×', r('run_now_python_vs_cold_throughput'), (v) => v >= 10),
    check('run_now_python_p50_c1_ms', 'run-now python p50 latency, one caller paced below the refill rate', '≤ 2 ms', s('run-now-python-c1')?.latency.p50, (v) => v <= 2),
    check('distinct_functions_vs_spawn_throughput', 'distinct python functions round-robin: forked / spawned (ZYGOTE=off)', '≥ 5×', r('distinct_functions_vs_spawn_throughput'), (v) => v >= 5),
    check('run_now_javascript_vs_cold_throughput', 'run-now javascript throughput / cold javascript throughput', '≥ 1.3×', r('run_now_javascript_vs_cold_throughput'), (v) => v >= 1.3),
    check('run_now_typescript_vs_cold_throughput', 'run-now typescript throughput / cold typescript throughput', '≥ 1.3×', r('run_now_typescript_vs_cold_throughput'), (v) => v >= 1.3),
    check('warm_python_forked_vs_spawned_throughput', 'warm python: forked sandboxes / spawned sandboxes (same run)', '≥ 0.9× (within noise)', r('warm_python_forked_vs_spawned_throughput'), (v) => v >= 0.9)
  ]
}

const n = (x: number, digits = 0): string => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const ms = (x: number): string => x < 10 ? x.toFixed(2) : n(x, x < 100 ? 1 : 0)
const mb = (kb: number): string => n(kb / 1024, 1)

export function scenarioTable (scenarios: readonly Scenario[]): string {
  const rows = [
    '| scenario | conns | req/s | p50 ms | p90 ms | p99 ms | max ms | errors / non-2xx | server CPU % | server CPU µs/req | tree CPU % | machine CPU % | server RSS MB (peak) | sandboxes spawned |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|'
  ]
  for (const s of scenarios) {
    const errs = `${s.errors + s.mismatches} / ${s.non2xx}`
    rows.push(`| ${s.name} | ${s.connections} | ${n(s.rps, s.rps < 100 ? 1 : 0)} | ${ms(s.latency.p50)} | ${ms(s.latency.p90)} | ${ms(s.latency.p99)} | ${ms(s.latency.max)} | ${errs} | ${n(s.cpu.serverPct)} | ${n(s.cpu.serverUsPerRequest)} | ${n(s.cpu.treePct)} | ${n(s.cpu.machinePct)} | ${mb(s.rss.serverKb)} (${mb(s.rss.serverPeakKb)}) | ${s.sandboxesSpawned} |`)
  }
  return rows.join('\n')
}

export function targetTable (targets: readonly Target[]): string {
  const rows = ['| target | wanted | measured | result |', '|---|---|--:|---|']
  for (const t of targets) {
    const value = t.value === null ? 'n/a' : t.id.endsWith('_ms') ? formatMs(t.value) : `${n(t.value, t.value < 10 ? 2 : 0)}×`
    rows.push(`| ${t.description} | ${t.target} | ${value} | ${t.pass === null ? 'not measured' : t.pass ? 'PASS' : '**MISS**'} |`)
  }
  return rows.join('\n')
}

export function sweepTable (sweep: readonly SweepPoint[]): string {
  const pools = [...new Set(sweep.map((p) => p.warmMaxPerFunction))]
  const conns = [...new Set(sweep.map((p) => p.connections))].sort((a, b) => a - b)
  if (pools.length === 0) return '(no sweep in this run)'
  const rows = [
    `| WARM_MAX_PER_FUNCTION | ${conns.map((c) => `c=${c}`).join(' | ')} | daemon CPU % at c=${conns[conns.length - 1] ?? ''} | machine CPU % at c=${conns[conns.length - 1] ?? ''} |`,
    `|--:|${conns.map(() => '--:').join('|')}|--:|--:|`
  ]
  for (const pool of pools) {
    const cells = conns.map((c) => {
      const p = sweep.find((x) => x.warmMaxPerFunction === pool && x.connections === c)
      return p === undefined ? '' : `${n(p.rps)} (${ms(p.p99)})${p.errors + p.non2xx > 0 ? ' ⚠' : ''}`
    })
    const last = sweep.find((x) => x.warmMaxPerFunction === pool && x.connections === conns[conns.length - 1])
    rows.push(`| ${pool} | ${cells.join(' | ')} | ${last === undefined ? '' : n(last.serverCpuPct)} | ${last === undefined ? '' : n(last.machinePct)} |`)
  }
  return rows.join('\n')
}

const ratioText = (x: number): string => String(Math.round(x * 100) / 100)

export function layerTable (l: LayerResult): string {
  const us = (x: number): string => n(x, 0)
  const rows = [
    `Sandbox layer, no HTTP (limits ${l.limits}): ${l.floor.calls} sequential calls per row, latency in µs.`,
    '',
    '| round trip | p50 | p90 | p99 | max | p50 / floor |',
    '|---|--:|--:|--:|--:|--:|',
    `| IPC floor: python3 echo over a socket pair, no bwrap | ${us(l.floor.p50)} | ${us(l.floor.p90)} | ${us(l.floor.p99)} | ${us(l.floor.max)} | 1 |`,
    `| warm python sandbox: \`Sandbox.run\` | ${us(l.warm.python.p50)} | ${us(l.warm.python.p90)} | ${us(l.warm.python.p99)} | ${us(l.warm.python.max)} | ${l.ratios.python_vs_floor_p50} |`,
    `| warm node sandbox (javascript): \`Sandbox.run\` | ${us(l.warm.javascript.p50)} | ${us(l.warm.javascript.p90)} | ${us(l.warm.javascript.p99)} | ${us(l.warm.javascript.max)} | ${l.ratios.javascript_vs_floor_p50} |`,
    ...(l.warm['python-forked'] === undefined ? [] : [`| warm python sandbox forked from the zygote: \`Sandbox.run\` | ${us(l.warm['python-forked'].p50)} | ${us(l.warm['python-forked'].p90)} | ${us(l.warm['python-forked'].p99)} | ${us(l.warm['python-forked'].max)} | ${ratioText(l.warm['python-forked'].p50 / l.floor.p50)} |`]),
    '',
    '| to ready, ms: spawn (cgroup + bwrap + bootstrap) or fork (cgroup + fork + isolation) | p50 | p90 | p99 | max | sandboxes |',
    '|---|--:|--:|--:|--:|--:|'
  ]
  const how: Record<string, string> = { python: 'python, spawned by bwrap', node: 'node, spawned by bwrap', 'python-forked': 'python, forked from the python zygote', 'node-forked': 'node, forked from the node zygote' }
  for (const [runtime, s] of Object.entries(l.spawnToReady)) rows.push(`| ${how[runtime] ?? runtime} | ${n(s.p50, 1)} | ${n(s.p90, 1)} | ${n(s.p99, 1)} | ${n(s.max, 1)} | ${s.count} |`)
  return rows.join('\n')
}

export function markdownRun (r: Results): string {
  const m = r.meta as { date: string, commit: string, dirty: boolean, cores: number, node: string, cpuModel: string, limits: string }
  const st = r.settings as { connections: number, coldConnections: number, duration: number, coldDuration: number, warmMaxPerFunction: number, rounds: number, sweepDuration: number }
  const parts = [
    `### ${m.date} · ${m.commit.slice(0, 10)}${m.dirty ? ' (uncommitted changes)' : ''}`,
    '',
    `${m.cores} cores (${m.cpuModel}), Node ${m.node}, limits ${m.limits}; warm/bare ${st.connections} connections × ${st.duration} s, ` +
      `run-now/cold ${st.coldConnections} connections × ${st.coldDuration} s, WARM_MAX_PER_FUNCTION=${st.warmMaxPerFunction}, ` +
      `warm-<language> in ${st.rounds} interleaved rounds. ` +
      'Latency of 2xx responses. Server and tree CPU in % of one core (tree adds the sandboxes and redis); machine CPU in % of all cores, load generator included.',
    '',
    ...(r.sandboxLayer === null ? [] : [layerTable(r.sandboxLayer), '']),
    scenarioTable(r.scenarios),
    '',
    targetTable(r.targets),
    ''
  ]
  if (r.sweep.length > 0) {
    parts.push(`Scaling sweep, warm python, ${st.sweepDuration} s per point: req/s (p99 ms) by warm sandboxes per function and connections.`, '', sweepTable(r.sweep), '')
  }
  if (r.profile !== null) {
    const p = r.profile
    const us = (selfMs: number): string => p.requests > 0 ? n(selfMs * 1000 / p.requests, 1) : ''
    parts.push(`Profile of the daemon (--cpu-prof) under warm python load, c=${p.connections}: ${n(p.rps)} req/s while profiled; ` +
      `self time of the busy ${n(p.summary.busyMs)} ms of ${n(p.summary.wallMs)} ms, ${us(p.summary.busyMs)} µs per request:`, '')
    parts.push('| area | % | µs/req | | top function (self time) | where | % | µs/req |', '|---|--:|--:|---|---|---|--:|--:|')
    const len = Math.max(Math.min(p.summary.areas.length, 8), Math.min(p.summary.top.length, 12))
    for (let i = 0; i < len; i++) {
      const a = p.summary.areas[i]
      const f = p.summary.top[i]
      parts.push(`| ${a?.area ?? ''} | ${a === undefined ? '' : n(a.pct, 1)} | ${a === undefined ? '' : us(a.selfMs)} | | ${f?.name ?? ''} | ${f?.where ?? ''} | ${f === undefined ? '' : n(f.pct, 1)} | ${f === undefined ? '' : us(f.selfMs)} |`)
    }
    parts.push('')
  }
  return parts.join('\n')
}
