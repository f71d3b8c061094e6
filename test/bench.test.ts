// `make bench` itself: a short real run of the harness end to end (sandbox
// layer, warm hearth, run-now, distinct functions, cold model; not the bare
// server and the spawn variant, for make test's time), and its settings'
// validation. It checks that every scenario ran without errors and was
// recorded, not how fast: figures are `make bench`'s.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from '../daemon/config.js'
import { loadOptions } from '../bench/options.js'

const run = promisify(execFile)

t.test('settings: defaults, flags over the environment, bad values refused', async (t) => {
  const d = loadOptions({}, [])
  t.match(d, { connections: 16, duration: 8, rounds: 2, sweepPools: [1, 2, 4, 8], only: null, profile: 'auto', appendReadme: true, distinctFunctions: 2000, pacedRate: 5 })
  const o = loadOptions({ BENCH_CONNECTIONS: '4', BENCH_ONLY: 'warm' }, ['--connections=8', '--sweep-pools=1,3', '--profile=never'])
  t.equal(o.connections, 8)
  t.same(o.sweepPools, [1, 3])
  t.same([...(o.only ?? [])], ['warm'])
  t.equal(o.profile, 'never')
  t.throws(() => loadOptions({}, ['--duration=0']), /BENCH_DURATION must be a number ≥ 1/)
  t.throws(() => loadOptions({}, ['--only=warm,nope']), /unknown group "nope"/)
  t.throws(() => loadOptions({}, ['--sweep-concurrency=1,x']), /comma-separated list/)
  t.throws(() => loadOptions({}, ['connections=3']), /^bench: Unexpected argument 'connections=3'/)
  t.throws(() => loadOptions({}, ['--conections=3']), /^bench: Unknown option '--conections'/)
})

t.test('a short run measures every server and writes the JSON and the chart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-test-'))
  await run(process.execPath, [join(ROOT, 'dist/bench/run.js'),
    // Not the bare server and the ZYGOTE=off variant (a second daemon): the
    // rest of the harness is theirs too, and make test has a time budget.
    '--only=sandbox,warm,run-now,distinct,cold', '--duration=1', '--warmup=0', '--rounds=1', '--cold-duration=1', '--cold-c1-duration=0',
    '--layer-calls=200', '--layer-spawns=2', '--distinct-functions=20', '--paced-rate=10', '--profile=never', '--readme=0', `--results-dir=${dir}`
  ], { timeout: 150_000 })
  const r = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8'))
  t.match(r.meta, { cores: Number, node: process.version, python_fresh_sandboxes: 'zygote' })
  const names = ['cold-javascript', 'cold-python', 'cold-typescript', 'distinct-functions',
    'run-now-javascript', 'run-now-javascript-c1', 'run-now-python', 'run-now-python-c1',
    'run-now-typescript', 'run-now-typescript-c1', 'warm-javascript', 'warm-python', 'warm-python-paced', 'warm-typescript']
  t.same(r.scenarios.map((s: { name: string }) => s.name).sort(), names)
  for (const s of r.scenarios) {
    t.ok(s.rps > 0 && s.errors + s.mismatches + s.non2xx === 0, `${s.name}: ${s.rps} req/s, no errors`)
  }
  const cold = r.scenarios.find((s: { name: string }) => s.name === 'cold-python')
  t.ok(cold.sandboxesSpawned >= Math.round(cold.rps * cold.seconds), 'the cold model spawns a sandbox per request')
  const paced = r.scenarios.find((s: { name: string }) => s.name === 'run-now-python-c1')
  t.ok(paced.rps <= 11, `the paced caller keeps to its rate (${paced.rps} req/s at 10)`)
  for (const k of ['warm_vs_cold_throughput', 'run_now_python_vs_cold_throughput', 'run_now_python_c1_vs_warm_paced_p50_latency']) {
    t.type(r.ratios[k], 'number', `ratio ${k} computed`)
  }
  t.ok(r.sandboxLayer.floor.p50 > 0 && r.sandboxLayer.warm.python.p50 > 0 && r.sandboxLayer.warm['python-forked'].p50 > 0)
  t.equal(r.sandboxLayer.spawnToReady.node.count, 2)
  t.equal(r.sandboxLayer.spawnToReady['python-forked'].count, 2, 'fork-to-ready measured')
  t.match(readFileSync(join(dir, 'latest.svg'), 'utf8'), /^<svg[^>]*>[\s\S]*warm-python[\s\S]*<\/svg>\s*$/)
})
