// GET /metrics over real HTTP: the Prometheus text format, series that move
// with the calls made, and no label carrying users' data (issue 12).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { get, post, startDaemon } from './helpers/daemon.js'
import { checkAnswer } from './helpers/openapi.js'
import { TestRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

// Prometheus's own parser, from its Python client (Debian's python3-prometheus-client,
// installed by make test): it raises on anything that is not the text format.
const PARSER = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
import math
print(json.dumps([[s.name, s.labels, s.value if math.isfinite(s.value) else str(s.value)] for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]))
`
function parse (text: string): Array<[string, Record<string, string>, number | string]> {
  const r = spawnSync('/usr/bin/python3', ['-c', PARSER], { input: text, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`the Prometheus parser refused the scrape (python3-prometheus-client installed? make test installs it): ${r.stderr}`)
  return JSON.parse(r.stdout)
}

const redis = await TestRedis.start(t)
const d = await startDaemon(t, { REDIS_URL: redis.url, POOL_MAX: '2', TIMEOUT_SCRIPT: '1', MAX_MEMORY: '64M' })
const u = (path: string): string => d.url + path
const SECRET_PATH = 'team-zebra/quokka-fn'

const labelText = (labels: Record<string, string>): string => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

/**
 * The scrape as {series → value}: each line checked against the text format,
 * then read by Prometheus's own text-format parser.
 */
async function scrape (t: Test, url = u('/metrics')): Promise<Map<string, number>> {
  const res = await fetch(url)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await res.text()
  if (url.startsWith(d.url)) checkAnswer('GET', url, res.status, res.headers.get('content-type'), text)
  t.notMatch(text, /team-zebra|quokka/, 'no function path in any label')
  for (const line of text.split('\n')) {
    if (line === '' || /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) continue
    // a value as Go's ParseFloat reads it, NaN and Inf in any case: prom-client
    // writes "Nan" (the event-loop delay's mean when no sample was taken
    // since the last scrape, as in two scrapes within EVENT_LOOP_SAMPLE_MS)
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-][Ii][Nn][Ff])$/.test(line)) t.fail(`not the text format: ${line}`)
  }
  const series = new Map<string, number>()
  for (const [name, labels, value] of parse(text)) series.set(`${name}${labelText(labels)}`, Number(value))
  return series
}

t.test('series move with the calls made, labelled by language, outcome, route pattern', async (t) => {
  t.equal((await post(u('/run-now'), { language: 'python', code: 'return 1' })).status, 200)
  t.equal((await post(u('/upload'), { path: SECRET_PATH, language: 'javascript', code: 'return 2' })).status, 200)
  for (let i = 0; i < 3; i++) t.equal((await post(u(`/run/${SECRET_PATH}`), {})).status, 200)
  t.equal((await post(u('/run-now'), { language: 'python', code: 'while True: pass' })).body.error.code, 'timeout')
  t.equal((await post(u('/run-now'), { language: 'python', code: 'raise ValueError()' })).body.error.code, 'script_error')
  t.equal((await get(u('/no/such/route'))).status, 404)

  // Teardowns are counted after the answers are written: wait for them.
  let m = new Map<string, number>()
  await waitFor(async () => {
    m = await scrape(t)
    return (m.get('hearth_sandboxes_destroyed_total{language="python",reason="timeout"}') ?? 0) >= 1
  }, 10_000, 'the timed-out sandbox counted as destroyed')
  t.ok((m.get('hearth_http_requests_total{route="/run-now",method="POST",status="200"}') ?? 0) >= 1)
  t.equal(m.get('hearth_http_requests_total{route="/run/*",method="POST",status="200"}'), 3, 'the route pattern, not the path')
  t.equal(m.get('hearth_http_requests_total{route="other",method="GET",status="404"}'), 1)
  t.ok((m.get('hearth_http_request_duration_seconds_count{route="/upload"}') ?? 0) >= 1)
  t.ok((m.get('hearth_calls_total{language="python",outcome="ok",start="fresh"}') ?? 0) >= 1)
  t.equal(m.get('hearth_calls_total{language="javascript",outcome="ok",start="fresh"}'), 1, 'the first call of a stored function is fresh')
  t.equal(m.get('hearth_calls_total{language="javascript",outcome="ok",start="warm"}'), 2, 'the next ones warm')
  t.equal(m.get('hearth_calls_total{language="python",outcome="timeout",start="fresh"}'), 1)
  t.equal(m.get('hearth_calls_total{language="python",outcome="script_error",start="fresh"}'), 1)
  t.equal(m.get('hearth_limit_breaches_total{language="python",limit="timeout"}'), 1)
  t.ok((m.get('hearth_sandboxes_destroyed_total{language="python",reason="used"}') ?? 0) >= 1, 'run-now sandboxes die after their call')
  t.ok((m.get('hearth_call_duration_seconds_count{language="javascript",start="warm"}') ?? 0) >= 2)
  t.ok([...m.keys()].some((k) => /^hearth_sandbox_start_seconds_count\{language="python",mode="(fork|spawn)"\}$/.test(k)), 'spawn-to-ready by mode')
  t.ok(m.has('hearth_wait_seconds_bucket{le="+Inf",language="python"}'))
  t.equal(m.get('hearth_redis_up'), 1)
  t.equal(m.get('hearth_zygote_up{runtime="python"}'), 1, 'fresh python sandboxes forked from the zygote')
  t.equal(m.get('hearth_zygote_up{runtime="node"}'), 1)
  t.ok((m.get('hearth_pool_sandboxes{language="python",state="ready"}') ?? -1) >= 0)
  t.ok(m.has('hearth_wait_queue_length'))
  t.ok([...m.keys()].some((k) => k.startsWith('hearth_build_info{version="0.1.0",node="v')), 'build info')
  t.ok(m.has('process_cpu_seconds_total'), 'Node process metrics')
})

t.test('a memory bomb counts as a memory breach and a sandbox destroyed for memory', async (t) => {
  const backend = (await get(u('/readyz'))).body.limits.backend as string
  if (!backend.startsWith('cgroup')) {
    t.pass(`skipped: the ${backend} limits backend cannot tell a memory kill (cgroups are needed)`)
    return
  }
  const bomb = await post(u('/run-now'), { language: 'python', code: 'x = bytearray(256 << 20)\nreturn len(x)' })
  t.equal(bomb.body.error.code, 'memory_limit')
  await waitFor(async () => ((await scrape(t)).get('hearth_sandboxes_destroyed_total{language="python",reason="memory"}') ?? 0) >= 1, 10_000, 'the memory kill counted')
  const m = await scrape(t)
  t.equal(m.get('hearth_limit_breaches_total{language="python",limit="memory"}'), 1)
  t.equal(m.get('hearth_calls_total{language="python",outcome="memory_limit",start="fresh"}'), 1)
})

t.test('with METRICS_PORT, /metrics is served there and not on the API port', async (t) => {
  const other = await startDaemon(t, { REDIS_URL: redis.url, POOL_MIN: '0', METRICS_PORT: '0' })
  const listening = (): Record<string, unknown> | undefined => other.logs.find((l) => l.msg === 'metrics listening (METRICS_PORT)')
  await waitFor(() => listening() !== undefined, 10_000, 'the metrics listener')
  const line = listening() as Record<string, unknown>
  t.equal((await get(`${other.url}/metrics`)).status, 404)
  const m = await scrape(t, `http://127.0.0.1:${String(line.port)}/metrics`)
  t.equal(m.get('hearth_redis_up'), 1)
})

/** Context switches of `pid`'s main thread so far: each sleep it wakes from, and each preemption. */
function switches (pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'latin1')
  return [...status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s*(\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
}

t.test('an idle daemon sleeps: its event loop wakes ~10 times a second, not 100 (the event-loop delay monitor)', async (t) => {
  const idle = await startDaemon(t, { REDIS_URL: redis.url, POOL_MIN: '0' })
  const pid = idle.proc.pid as number
  // One second at a time, until one is quiet (start-up work settles first):
  // prom-client's default monitor alone made 100 wake-ups in every second.
  let perSecond = Infinity
  for (let i = 0; i < 8 && perSecond >= 30; i++) {
    const before = switches(pid)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    perSecond = switches(pid) - before
  }
  t.ok(perSecond < 30, `${perSecond} wake-ups in the quietest second measured`)
  t.ok((await scrape(t)).has('nodejs_eventloop_lag_p99_seconds'), 'the event-loop delay still measured')
})
