// Bench settings: environment variables, overridden by `--name=value` flags
// (`--connections=8` sets BENCH_CONNECTIONS), read with util.parseArgs. Defaults
// finish the whole run, sweep included, in five to six minutes on the 2-core
// development machine.
import { parseArgs } from 'node:util'

export interface BenchOptions {
  /** connections of the bare and warm scenarios */
  readonly connections: number
  /** seconds of each measured run */
  readonly duration: number
  /** seconds of unmeasured load before each run (fills the warm sets) */
  readonly warmup: number
  /** the warm python/javascript/typescript runs are split into this many interleaved rounds */
  readonly rounds: number
  /** connections of the cold and run-now scenarios (each request spawns a sandbox) */
  readonly coldConnections: number
  readonly coldDuration: number
  /** seconds of the concurrency-1 cold run that gives the intrinsic cold latency */
  readonly coldC1Duration: number
  /** hearth's WARM_MAX_PER_FUNCTION in the main scenarios */
  readonly warmMaxPerFunction: number
  /** the explicit target runs: warm p50 at `targetC1`, p99 at `targetC32` */
  readonly targetC1: number
  readonly targetC32: number
  readonly sweepPools: readonly number[]
  readonly sweepConcurrency: readonly number[]
  /** seconds per sweep point; 0 skips the sweep */
  readonly sweepDuration: number
  /** per-request timeout of the load generator, seconds */
  readonly timeout: number
  /** sandbox layer (no HTTP): measured warm calls per series, and spawns per runtime */
  readonly layerCalls: number
  readonly layerSpawns: number
  /** stored python functions called round-robin in the distinct-functions scenarios */
  readonly distinctFunctions: number
  /** requests per second of the paced run-now-<language>-c1 scenarios */
  readonly pacedRate: number
  /** only these scenario groups: sandbox, bare, warm, targets, run-now, distinct, spawn, cold, sweep */
  readonly only: ReadonlySet<string> | null
  /**
   * profile hearth (--cpu-prof) under warm python load after the measured runs:
   * auto = only when a target was missed
   */
  readonly profile: 'auto' | 'always' | 'never'
  readonly profileConnections: number
  /** where latest.json / latest.svg go */
  readonly resultsDir: string
  /** append the run's tables to bench/README.md */
  readonly appendReadme: boolean
}

const GROUPS = ['sandbox', 'bare', 'warm', 'targets', 'run-now', 'distinct', 'spawn', 'cold', 'sweep']

/** Every flag, as `--name=value`; each sets BENCH_NAME (`--cold-duration` → BENCH_COLD_DURATION). */
const FLAGS = ['connections', 'duration', 'warmup', 'rounds', 'cold-connections', 'cold-duration', 'cold-c1-duration',
  'warm-max-per-function', 'sweep-pools', 'sweep-concurrency', 'sweep-duration', 'timeout', 'layer-calls', 'layer-spawns',
  'distinct-functions', 'paced-rate', 'only', 'profile', 'profile-connections', 'results-dir', 'readme']

function fromArgv (argv: readonly string[]): Record<string, string> {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: [...argv], options: Object.fromEntries(FLAGS.map((f) => [f, { type: 'string' as const }])), strict: true }).values
  } catch (err) {
    throw new Error(`bench: ${(err as Error).message} (flags: ${FLAGS.map((f) => `--${f}=`).join(' ')})`)
  }
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(values)) {
    if (typeof value === 'string') out[`BENCH_${name.replace(/-/g, '_').toUpperCase()}`] = value
  }
  return out
}

export function loadOptions (env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv.slice(2)): BenchOptions {
  const all: Record<string, string | undefined> = { ...env, ...fromArgv(argv) }
  const num = (name: string, fallback: number, min: number): number => {
    const text = all[name]
    if (text === undefined || text.trim() === '') return fallback
    const n = Number(text)
    if (!Number.isFinite(n) || n < min) throw new Error(`bench: ${name} must be a number ≥ ${min} (got ${JSON.stringify(text)})`)
    return n
  }
  const list = (name: string, fallback: number[]): number[] => {
    const text = all[name]
    if (text === undefined || text.trim() === '') return fallback
    const values = text.split(',').map((s) => Number(s.trim()))
    if (values.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`bench: ${name} must be a comma-separated list of positive integers (got ${JSON.stringify(text)})`)
    return values
  }
  const profileText = (all.BENCH_PROFILE ?? 'auto').trim().toLowerCase()
  let profile: BenchOptions['profile'] = 'auto'
  if (['1', 'on', 'true', 'yes', 'always'].includes(profileText)) profile = 'always'
  else if (['0', 'off', 'false', 'no', 'never'].includes(profileText)) profile = 'never'
  else if (profileText !== 'auto') throw new Error(`bench: BENCH_PROFILE must be auto, always or never (got ${JSON.stringify(profileText)})`)
  let only: Set<string> | null = null
  const onlyText = (all.BENCH_ONLY ?? '').trim()
  if (onlyText !== '') {
    only = new Set(onlyText.split(',').map((s) => s.trim()))
    for (const g of only) if (!GROUPS.includes(g)) throw new Error(`bench: BENCH_ONLY names unknown group ${JSON.stringify(g)} (one of ${GROUPS.join(', ')})`)
  }
  return Object.freeze({
    connections: Math.round(num('BENCH_CONNECTIONS', 16, 1)),
    duration: num('BENCH_DURATION', 8, 1),
    warmup: num('BENCH_WARMUP', 3, 0),
    rounds: Math.round(num('BENCH_ROUNDS', 2, 1)),
    coldConnections: Math.round(num('BENCH_COLD_CONNECTIONS', 8, 1)),
    coldDuration: num('BENCH_COLD_DURATION', 8, 1),
    coldC1Duration: num('BENCH_COLD_C1_DURATION', 4, 0),
    warmMaxPerFunction: Math.round(num('BENCH_WARM_MAX_PER_FUNCTION', 4, 1)),
    targetC1: 1,
    targetC32: 32,
    sweepPools: list('BENCH_SWEEP_POOLS', [1, 2, 4, 8]),
    sweepConcurrency: list('BENCH_SWEEP_CONCURRENCY', [1, 2, 4, 8, 16, 32, 64]),
    sweepDuration: num('BENCH_SWEEP_DURATION', 2, 0),
    timeout: num('BENCH_TIMEOUT', 10, 1),
    layerCalls: Math.round(num('BENCH_LAYER_CALLS', 5000, 10)),
    layerSpawns: Math.round(num('BENCH_LAYER_SPAWNS', 20, 1)),
    distinctFunctions: Math.round(num('BENCH_DISTINCT_FUNCTIONS', 2000, 1)),
    pacedRate: num('BENCH_PACED_RATE', 5, 1),
    only,
    profile,
    profileConnections: Math.round(num('BENCH_PROFILE_CONNECTIONS', 32, 1)),
    resultsDir: all.BENCH_RESULTS_DIR ?? '',
    appendReadme: !['0', 'off', 'false', 'no'].includes((all.BENCH_README ?? '1').trim().toLowerCase())
  })
}

export function wants (o: BenchOptions, group: string): boolean {
  return o.only === null || o.only.has(group)
}
