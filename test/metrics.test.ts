// GET /metrics over real HTTP: the Prometheus text format, series that move
// with the calls made, and no label carrying users' data (issue 12).
import t, { type Test } from 'tap'
import { get, post, startDaemon } from './helpers/daemon.js'
import { TestRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

const redis = await TestRedis.start(t)
const d = await startDaemon(t, { REDIS_URL: redis.url, POOL_MAX: '2', TIMEOUT_SCRIPT: '1' })
const u = (path: string): string => d.url + path
const SECRET_PATH = 'team-zebra/quokka-fn'

/** The scrape as {series → value}, every line checked against the text format. */
async function scrape (t: Test, url = u('/metrics')): Promise<Map<string, number>> {
  const res = await fetch(url)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await res.text()
  t.notMatch(text, /team-zebra|quokka/, 'no function path in any label')
  const series = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})?) (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line)
    if (m === null) {
      t.fail(`not the text format: ${line}`)
      continue
    }
    series.set(m[1] as string, Number(m[2]))
  }
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
  t.ok((m.get('hearth_pool_sandboxes{language="python",state="ready"}') ?? -1) >= 0)
  t.ok(m.has('hearth_wait_queue_length'))
  t.ok([...m.keys()].some((k) => k.startsWith('hearth_build_info{version="0.1.0",node="v')), 'build info')
  t.ok(m.has('process_cpu_seconds_total'), 'Node process metrics')
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
