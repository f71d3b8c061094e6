// `make bench` itself: a short real run of the harness end to end (sandbox
// layer, bare uWS, warm hearth, cold model), and its settings' validation.
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
  t.match(d, { connections: 16, duration: 8, rounds: 2, sweepPools: [1, 2, 4, 8], only: null, profile: 'auto', appendReadme: true })
  const o = loadOptions({ BENCH_CONNECTIONS: '4', BENCH_ONLY: 'warm' }, ['--connections=8', '--sweep-pools=1,3', '--profile=never'])
  t.equal(o.connections, 8)
  t.same(o.sweepPools, [1, 3])
  t.same([...(o.only ?? [])], ['warm'])
  t.equal(o.profile, 'never')
  t.throws(() => loadOptions({}, ['--duration=0']), /BENCH_DURATION must be a number ≥ 1/)
  t.throws(() => loadOptions({}, ['--only=warm,nope']), /unknown group "nope"/)
  t.throws(() => loadOptions({}, ['--sweep-concurrency=1,x']), /comma-separated list/)
  t.throws(() => loadOptions({}, ['connections=3']), /unknown argument/)
})

t.test('a short run measures every server and writes the JSON and the chart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-test-'))
  await run(process.execPath, [join(ROOT, 'dist/bench/run.js'),
    '--only=sandbox,bare,warm,cold', '--duration=1', '--warmup=0', '--rounds=1', '--cold-duration=1', '--cold-c1-duration=0',
    '--layer-calls=200', '--layer-spawns=2', '--profile=never', '--readme=0', `--results-dir=${dir}`
  ], { timeout: 120_000 })
  const r = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8'))
  t.match(r.meta, { cores: Number, node: process.version })
  t.same(r.scenarios.map((s: { name: string }) => s.name).sort(),
    ['bare', 'cold-javascript', 'cold-python', 'cold-typescript', 'warm-javascript', 'warm-python', 'warm-typescript'])
  for (const s of r.scenarios) {
    t.ok(s.rps > 0 && s.errors + s.mismatches + s.non2xx === 0, `${s.name}: ${s.rps} req/s, no errors`)
  }
  const cold = r.scenarios.find((s: { name: string }) => s.name === 'cold-python')
  t.ok(cold.sandboxesSpawned >= Math.round(cold.rps * cold.seconds), 'the cold model spawns a sandbox per request')
  t.ok(r.ratios.warm_vs_cold_throughput > 10, `warm/cold throughput ${r.ratios.warm_vs_cold_throughput}`)
  t.type(r.ratios.warm_vs_bare_uws_throughput, 'number')
  t.type(r.ratios.cold_vs_warm_p50_latency, 'number')
  t.ok(r.sandboxLayer.floor.p50 > 0 && r.sandboxLayer.warm.python.p50 > 0 && r.sandboxLayer.spawnToReady.node.count === 2)
  t.match(readFileSync(join(dir, 'latest.svg'), 'utf8'), /^<svg[^>]*>[\s\S]*warm-python[\s\S]*<\/svg>\s*$/)
})
