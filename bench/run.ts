// `make bench`: hearth against a bare uWS server and the cold spawn-per-request
// model, in one run on this machine (issue 5). Each server is its own process;
// autocannon drives the load from this one. Writes bench/results/latest.json,
// bench/results/latest.svg and appends the tables to bench/README.md.
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, withDotenv, type Language } from '../daemon/config.js'
import { runLoad } from './load.js'
import { elapsedSeconds, measure, measureInterleaved, sanity, say, scenarios, setRequestTimeout, withServer, type Def } from './measure.js'
import { loadOptions, wants } from './options.js'
import { metadata, writeOutputs } from './outputs.js'
import { cpuBetween, cpuSnapshot } from './procstat.js'
import { formatProfile, summarizeProfile } from './profile.js'
import { computeRatios, computeTargets, type Results, type SweepPoint } from './report.js'
import { measureSandboxLayer, type LayerResult } from './sandbox-layer.js'
import { cgroupName, postJson, startBare, startCold, startHearth, type HearthServer, type Server } from './servers.js'
import { CODE, EXPECTED, INPUT, LANGUAGES, pathOf, STORED_BODY } from './workload.js'

const opts = loadOptions()
setRequestTimeout(opts.timeout)

async function upload (server: Server): Promise<void> {
  for (const language of LANGUAGES) {
    const res = await postJson(`${server.url}/upload`, { path: pathOf(language), language, code: CODE[language] })
    if (res.status !== 200) throw new Error(`upload of ${language} to ${server.kind} failed: ${res.status} ${JSON.stringify(res.body)}`)
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
    if (!spawn && want('warm')) {
      const defs: Def[] = languages.map((l) => ({
        name: `warm-${l}`, group: 'warm', language: l, url: stored(l), body: STORED_BODY, connections: opts.connections, duration: opts.duration, warmup: opts.warmup
      }))
      // warm-python-spawn: the same in a daemon with ZYGOTE=off, alive meanwhile
      // and measured in the same rounds, so the forked/spawned ratio compares
      // like with like (two daemons one after the other drifted by ±20 %).
      if (wants(opts, 'spawn')) {
        await withServer(async () => await startHearth({ warmMaxPerFunction: opts.warmMaxPerFunction, env: { ZYGOTE: 'off' } }), async (other) => {
          await upload(other)
          const def: Def = { name: 'warm-python-spawn', group: 'warm', language: 'python', url: `${other.url}/run/${pathOf('python')}`, body: STORED_BODY, connections: opts.connections, duration: opts.duration, warmup: opts.warmup, server: other }
          await measureInterleaved(srv, [...defs, def], opts.rounds)
        })
      } else {
        await measureInterleaved(srv, defs, opts.rounds)
      }
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
  say(`done in ${elapsedSeconds().toFixed(0)} s`)
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.stack ?? String(err)}\n`)
  process.exitCode = 1
})
