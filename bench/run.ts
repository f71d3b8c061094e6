// `make bench`: hearth against a bare uWS server and the cold spawn-per-request
// model, in one run on this machine (issue 5). Each server is its own process;
// autocannon drives the load from this one. Writes bench/results/latest.json,
// bench/results/latest.svg and appends the tables to bench/README.md.
import { execFileSync } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { loadConfig, ROOT, withDotenv, type Language } from '../daemon/config.js'
import { formatMs, renderChart } from './chart.js'
import { runLoad, runLoadPart, summarize, type LoadPart, type LoadSpec } from './load.js'
import { loadOptions, wants, type BenchOptions } from './options.js'
import { cpuBetween, cpuDelta, cpuSnapshot, cpuUsage, sampleRss, treeRssKb, type CpuDelta } from './procstat.js'
import { formatProfile, summarizeProfile } from './profile.js'
import { computeRatios, computeTargets, markdownRun, type Group, type Results, type Scenario, type SweepPoint } from './report.js'
import { measureSandboxLayer, type LayerResult } from './sandbox-layer.js'
import { cgroupName, postJson, startBare, startCold, startHearth, type HearthServer, type Server } from './servers.js'

const LANGUAGES: readonly Language[] = ['python', 'javascript', 'typescript']
const CODE: Record<Language, string> = {
  python: 'return event["a"] + event["b"]',
  javascript: 'return event.a + event.b',
  typescript: 'const e: { a: number, b: number } = event\nreturn e.a + e.b'
}
const INPUT = JSON.stringify({ a: 3, b: 5 })
const STORED_BODY = JSON.stringify({ input: INPUT })
const EXPECTED = '{"data":8,"type":"number"}'
const pathOf = (l: Language): string => `bench/add-${l}`

const opts = loadOptions()
const progress = process.stderr.isTTY === true
const scenarios: Scenario[] = []
const started = Date.now()

function say (line: string): void {
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`)
}

async function upload (server: Server): Promise<void> {
  for (const language of LANGUAGES) {
    const res = await postJson(`${server.url}/upload`, { path: pathOf(language), language, code: CODE[language] })
    if (res.status !== 200) throw new Error(`upload of ${language} to ${server.kind} failed: ${res.status} ${JSON.stringify(res.body)}`)
  }
}

/** One request first: a server that answers wrongly is a broken bench, not a slow server. */
async function sanity (server: Server, url: string, body: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const text = await res.text()
  if (res.status !== 200 || text !== EXPECTED) throw new Error(`${server.kind} ${url} answered ${res.status} ${text}\n${server.logTail()}`)
}

interface Def {
  readonly name: string
  readonly group: Group
  readonly language: Language | null
  readonly url: string
  /** paths taken round-robin (distinct functions) */
  readonly paths?: readonly string[]
  /** paced requests per second instead of back to back */
  readonly rate?: number
  readonly body: string
  readonly connections: number
  readonly duration: number
  readonly warmup: number
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

function specOf (d: Def): LoadSpec {
  return { title: d.name, url: d.url, paths: d.paths, rate: d.rate, body: d.body, connections: d.connections, duration: d.duration, timeout: opts.timeout, expectBody: EXPECTED }
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

async function measure (server: Server, d: Def): Promise<Scenario> {
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
async function measureInterleaved (server: Server, defs: readonly Def[], rounds: number): Promise<void> {
  const parts = defs.map((): Part[] => [])
  for (let r = 0; r < rounds; r++) {
    for (const [i, d] of defs.entries()) {
      if (r === 0) {
        await sanity(server, d.url, d.body)
        if (d.warmup > 0) await runLoad({ ...specOf(d), duration: d.warmup })
      }
      parts[i]?.push(await measurePart(server, d, d.duration / rounds))
    }
  }
  for (const [i, d] of defs.entries()) record(server, d, parts[i] as Part[])
}

async function withServer<T extends Server> (start: () => Promise<T>, body: (server: T) => Promise<void>): Promise<void> {
  const server = await start()
  try {
    await body(server)
  } finally {
    const code = await server.stop()
    if (code !== 0) say(`${server.kind} exited with ${String(code)}:\n${server.logTail()}`)
  }
}

async function bare (): Promise<void> {
  await withServer(startBare, async (srv) => {
    await measure(srv, { name: 'bare', group: 'bare', language: null, url: `${srv.url}/run/${pathOf('python')}`, body: STORED_BODY, connections: opts.connections, duration: opts.duration, warmup: opts.warmup })
  })
}

/**
 * hearth as configured by default (python sandboxes forked from a zygote), or
 * with ZYGOTE=off (`spawn`: every fresh python sandbox spawned, as before issue
 * 9), whose scenarios carry the suffix -spawn.
 */
async function hearthScenarios (meta: Record<string, unknown>, variant: 'zygote' | 'spawn'): Promise<void> {
  const spawn = variant === 'spawn'
  const suffix = spawn ? '-spawn' : ''
  const env: Record<string, string> = spawn ? { ZYGOTE: 'off' } : {}
  // BENCH_ONLY=spawn measures this variant's scenarios whatever their own groups
  const want = (group: string): boolean => wants(opts, group) || (spawn && opts.only?.has('spawn') === true)
  await withServer(async () => await startHearth({ warmMaxPerFunction: opts.warmMaxPerFunction, env }), async (srv: HearthServer) => {
    const ready = await srv.readyz()
    if (!spawn) meta.limits = ready.limits?.backend ?? 'unknown'
    meta[`python_fresh_sandboxes${suffix}`] = ready.runtimes?.python?.mode ?? 'unknown'
    await upload(srv)
    const stored = (l: Language): string => `${srv.url}/run/${pathOf(l)}`
    const languages = spawn ? ['python' as const] : LANGUAGES
    if (want('warm')) {
      await measureInterleaved(srv, languages.map((l) => ({
        name: `warm-${l}${suffix}`, group: 'warm', language: l, url: stored(l), body: STORED_BODY, connections: opts.connections, duration: opts.duration, warmup: opts.warmup
      })), spawn ? 1 : opts.rounds)
    }
    if (!spawn && wants(opts, 'targets')) {
      for (const c of [opts.targetC1, opts.targetC32]) {
        await measure(srv, { name: `warm-python-c${c}`, group: 'target', language: 'python', url: stored('python'), body: STORED_BODY, connections: c, duration: opts.duration, warmup: opts.warmup })
      }
    }
    if (!spawn && want('run-now')) {
      // The floor of a paced caller on this machine (each request finds the
      // processes asleep): what run-now-python-c1 is compared with.
      await measure(srv, { name: 'warm-python-paced', group: 'target', language: 'python', url: stored('python'), body: STORED_BODY, connections: 1, rate: opts.pacedRate, duration: opts.coldDuration, warmup: 0 })
    }
    if (want('run-now')) {
      for (const l of languages) {
        const body = JSON.stringify({ language: l, code: CODE[l], input: INPUT })
        await srv.settle()
        await measure(srv, { name: `run-now-${l}${suffix}`, group: 'run-now', language: l, url: `${srv.url}/run-now`, body, connections: opts.coldConnections, duration: opts.coldDuration, warmup: 0 })
        // One caller below the refill rate: what a latency-sensitive client sees
        // when a fresh sandbox is waiting (back to back, c=1 measures the refill).
        await srv.settle()
        await measure(srv, { name: `run-now-${l}-c1${suffix}`, group: 'run-now', language: l, url: `${srv.url}/run-now`, body, connections: 1, rate: opts.pacedRate, duration: opts.coldDuration, warmup: 0 })
      }
    }
    if (want('distinct')) {
      const paths: string[] = []
      for (let i = 0; i < opts.distinctFunctions; i++) {
        const path = `bench/distinct/f${i}`
        const res = await postJson(`${srv.url}/upload`, { path, language: 'python', code: CODE.python })
        if (res.status !== 200) throw new Error(`upload of ${path} failed: ${res.status} ${JSON.stringify(res.body)}`)
        paths.push(`/run/${path}`)
      }
      await srv.settle()
      await measure(srv, { name: `distinct-functions${suffix}`, group: 'distinct', language: 'python', url: `${srv.url}${paths[0] as string}`, paths, body: STORED_BODY, connections: opts.coldConnections, duration: opts.coldDuration, warmup: 0 })
    }
  })
}

async function cold (): Promise<void> {
  await withServer(startCold, async (srv) => {
    await upload(srv)
    for (const l of LANGUAGES) {
      await measure(srv, { name: `cold-${l}`, group: 'cold', language: l, url: `${srv.url}/run/${pathOf(l)}`, body: STORED_BODY, connections: opts.coldConnections, duration: opts.coldDuration, warmup: 0 })
    }
    if (opts.coldC1Duration > 0) {
      await measure(srv, { name: 'cold-python-c1', group: 'cold', language: 'python', url: `${srv.url}/run/${pathOf('python')}`, body: STORED_BODY, connections: 1, duration: opts.coldC1Duration, warmup: 0 })
    }
  })
}

async function sandboxLayer (): Promise<LayerResult> {
  const l = await measureSandboxLayer({ calls: opts.layerCalls, spawns: opts.layerSpawns }, cgroupName())
  const line = (name: string, r: LayerResult['floor']): string => `${name.padEnd(20)} p50 ${r.p50.toFixed(0)} µs  p90 ${r.p90.toFixed(0)} µs  p99 ${r.p99.toFixed(0)} µs  max ${r.max.toFixed(0)} µs`
  say(line('ipc-floor', l.floor))
  say(`${line('sandbox-python', l.warm.python)}  (${l.ratios.python_vs_floor_p50}× the floor)`)
  say(`${line('sandbox-javascript', l.warm.javascript)}  (${l.ratios.javascript_vs_floor_p50}× the floor)`)
  say(line('sandbox-py-forked', l.warm['python-forked']))
  for (const [runtime, s] of Object.entries(l.spawnToReady)) say(`${runtime.endsWith('-forked') || runtime.endsWith('-zygote') ? `zygote-to-ready ${runtime.split('-')[0] as string}` : `spawn-to-ready ${runtime.padEnd(6)}`} p50 ${s.p50.toFixed(1)} ms  p90 ${s.p90.toFixed(1)} ms  p99 ${s.p99.toFixed(1)} ms  max ${s.max.toFixed(1)} ms (${s.count} sandboxes)`)
  return l
}

async function sweep (): Promise<SweepPoint[]> {
  const points: SweepPoint[] = []
  const maxC = Math.max(...opts.sweepConcurrency)
  for (const pool of opts.sweepPools) {
    await withServer(async () => await startHearth({ warmMaxPerFunction: pool }), async (srv) => {
      await upload(srv)
      const url = `${srv.url}/run/${pathOf('python')}`
      await sanity(srv, url, STORED_BODY)
      const spec = { title: 'sweep', url, body: STORED_BODY, timeout: opts.timeout, expectBody: EXPECTED }
      // Fill the function's warm set to its cap before measuring.
      await runLoad({ ...spec, connections: maxC, duration: Math.min(Math.max(opts.warmup, 1), 2) })
      const line: string[] = []
      for (const c of opts.sweepConcurrency) {
        const spawned0 = await srv.spawned()
        const cpu0 = cpuSnapshot(srv.pid)
        const r = await runLoad({ ...spec, connections: c, duration: opts.sweepDuration })
        const cpu = cpuBetween(cpu0, cpuSnapshot(srv.pid))
        points.push({
          warmMaxPerFunction: pool,
          connections: c,
          rps: r.rps,
          p50: r.latency.p50,
          p99: r.latency.p99,
          errors: r.errors + r.mismatches,
          non2xx: r.non2xx,
          serverCpuPct: cpu.serverPct,
          treeCpuPct: cpu.treePct,
          machinePct: cpu.machinePct,
          sandboxesSpawned: await srv.spawned() - spawned0
        })
        line.push(`c=${c}: ${Math.round(r.rps)}`)
      }
      say(`sweep WARM_MAX_PER_FUNCTION=${pool}  ${line.join('  ')} req/s`)
    })
  }
  return points
}

async function profile (): Promise<Results['profile']> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-profile-'))
  const connections = opts.profileConnections
  let load = null as Awaited<ReturnType<typeof runLoad>> | null
  const window = { fromUs: 0, toUs: 0 }
  await withServer(async () => await startHearth({ warmMaxPerFunction: opts.warmMaxPerFunction, cpuProfDir: dir }), async (srv) => {
    await upload(srv)
    const spec = { title: 'profile', url: `${srv.url}/run/${pathOf('python')}`, body: STORED_BODY, connections, timeout: opts.timeout, expectBody: EXPECTED }
    await runLoad({ ...spec, duration: opts.warmup })
    window.fromUs = Number(process.hrtime.bigint() / 1000n)
    load = await runLoad({ ...spec, duration: opts.duration })
    window.toUs = Number(process.hrtime.bigint() / 1000n)
  })
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined || load === null) {
    say(`no .cpuprofile was written in ${dir}`)
    return null
  }
  const summary = summarizeProfile(join(dir, file), 25, window)
  const l = load as Awaited<ReturnType<typeof runLoad>>
  say(`profile (c=${connections}, ${l.rps} req/s while profiled):\n${formatProfile(summary)}`)
  return { connections, rps: l.rps, p50: l.latency.p50, p99: l.latency.p99, requests: Math.round(l.rps * l.seconds), summary }
}

function shell (cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
  } catch {
    return 'unknown'
  }
}

function metadata (): Record<string, unknown> {
  return {
    date: new Date().toISOString(),
    commit: shell('git', ['rev-parse', 'HEAD']),
    dirty: shell('git', ['status', '--porcelain', '--untracked-files=no']) !== '',
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryMb: Math.round(totalmem() / 2 ** 20),
    kernel: release(),
    // other work on the machine skews every number: the 1-minute load at the start
    loadavgAtStart: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    node: process.version,
    bwrap: shell('bwrap', ['--version']),
    python: shell('/usr/bin/python3', ['--version']),
    limits: 'not measured'
  }
}

function writeOutputs (results: Results, o: BenchOptions): void {
  const dir = o.resultsDir !== '' ? o.resultsDir : join(ROOT, 'bench/results')
  mkdirSync(dir, { recursive: true })
  const write = (name: string, text: string): void => {
    writeFileSync(join(dir, `${name}.tmp`), text)
    renameSync(join(dir, `${name}.tmp`), join(dir, name))
  }
  write('latest.json', JSON.stringify(results, null, 2) + '\n')
  const m = results.meta as { date: string, commit: string, cores: number, node: string }
  const label = (s: Scenario): string => `${s.name} (c=${s.connections})`
  write('latest.svg', renderChart({
    title: 'hearth bench: latency percentiles per scenario',
    subtitle: `${m.date.slice(0, 19).replace('T', ' ')} UTC · ${m.commit.slice(0, 10)} · ${m.cores} cores · Node ${m.node} · load generator on the same machine`,
    rows: results.scenarios.map((s) => ({ label: label(s), note: `${s.rps < 100 ? s.rps.toFixed(1) : Math.round(s.rps).toLocaleString('en-US')} req/s`, group: s.group, latency: s.latency })),
    marks: [{ ms: 1, label: 'target: warm p50 ≤ 1 ms (c=1)' }, { ms: 5, label: 'target: warm p99 ≤ 5 ms (c=32)' }]
  }))
  say(`wrote ${join(dir, 'latest.json')} and ${join(dir, 'latest.svg')}`)
  if (o.appendReadme && o.only === null) {
    const readme = join(ROOT, 'bench/README.md')
    if (!existsSync(readme)) writeFileSync(readme, '# hearth benchmarks\n\nRun with `make bench`.\n\n## Runs\n')
    appendFileSync(readme, '\n' + markdownRun(results))
    say(`appended this run's tables to ${readme}`)
  }
}

async function main (): Promise<void> {
  const meta = metadata()
  const hearthDefaults = loadConfig(withDotenv({ ...process.env }))
  say(`hearth bench on ${String(meta.cores)} cores, Node ${process.version}; ` +
    `${opts.connections} connections × ${opts.duration} s (cold and run-now ${opts.coldConnections} × ${opts.coldDuration} s)`)
  const layer = wants(opts, 'sandbox') ? await sandboxLayer() : null
  if (wants(opts, 'bare')) await bare()
  if (['warm', 'targets', 'run-now', 'distinct'].some((g) => wants(opts, g))) await hearthScenarios(meta, 'zygote')
  if (wants(opts, 'spawn')) await hearthScenarios(meta, 'spawn')
  if (wants(opts, 'cold')) await cold()
  const ratios = computeRatios(scenarios)
  const targets = computeTargets(scenarios, ratios, opts.targetC1, opts.targetC32)
  const missed = targets.some((t) => t.pass === false)
  const points = wants(opts, 'sweep') && opts.sweepDuration > 0 ? await sweep() : []
  // Issue 5: a missed target is explained by a profile of the daemon.
  const prof = opts.profile === 'always' || (opts.profile === 'auto' && missed) ? await profile() : null
  const results: Results = {
    meta,
    settings: {
      connections: opts.connections,
      duration: opts.duration,
      warmup: opts.warmup,
      coldConnections: opts.coldConnections,
      coldDuration: opts.coldDuration,
      coldC1Duration: opts.coldC1Duration,
      warmMaxPerFunction: opts.warmMaxPerFunction,
      rounds: opts.rounds,
      sweepPools: opts.sweepPools,
      sweepConcurrency: opts.sweepConcurrency,
      sweepDuration: opts.sweepDuration,
      layerCalls: opts.layerCalls,
      layerSpawns: opts.layerSpawns,
      distinctFunctions: opts.distinctFunctions,
      timeout: opts.timeout,
      hearth: {
        poolMin: hearthDefaults.poolMin,
        poolMax: hearthDefaults.poolMax,
        queueMax: hearthDefaults.queueMax,
        warmMaxUses: hearthDefaults.warmMaxUses,
        maxCpus: hearthDefaults.maxCpus,
        maxMemoryBytes: hearthDefaults.maxMemoryBytes,
        logLevel: 'warn'
      }
    },
    scenarios,
    ratios,
    targets,
    sweep: points,
    sandboxLayer: layer,
    profile: prof
  }
  for (const t of targets) say(`target ${t.id}: ${t.target}, measured ${t.value ?? 'n/a'} → ${t.pass === null ? 'not measured' : t.pass ? 'PASS' : 'MISS'}`)
  writeOutputs(results, opts)
  const took = (Date.now() - started) / 1000
  say(`done in ${took.toFixed(0)} s`)
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.stack ?? String(err)}\n`)
  process.exitCode = 1
})
