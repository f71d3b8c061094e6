// The go-faas API over real HTTP: every documented example, and every error code.
import t from 'tap'
import { get, post, sse, startDaemon } from './helpers/daemon.js'
import { TestRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

const redis = await TestRedis.start(t)
const d = await startDaemon(t, {
  REDIS_URL: redis.url,
  CODE_MAX_SIZE: '4096',
  INPUT_MAX_SIZE: '2048',
  RESULT_MAX_BYTES: '4096',
  TIMEOUT_SCRIPT: '5',
  POOL_MAX: '2',
  QUEUE_MAX: '2',
  WARM_MAX_PER_FUNCTION: '1',
  ACQUIRE_TIMEOUT: '3'
})
const u = (path: string): string => d.url + path

t.test('go-faas: upload a script, then run its latest and a pinned version', async (t) => {
  const up = await post(u('/upload'), { path: 'math/add', language: 'python', code: 'return event.get("a", 0) + event.get("b", 0)' })
  t.equal(up.status, 200)
  t.match(up.body, { path: 'math/add', language: 'python', version: Number })
  t.ok(Math.abs(up.body.version - Date.now() / 1000) < 60, 'version has go-faas\'s unix-time shape')
  const latest = await post(u('/run/math/add'), { input: '{"a": 3, "b": 5}' })
  t.same([latest.status, latest.body], [200, { data: 8, type: 'number' }])
  const pinned = await post(u(`/run/math/add?version=${up.body.version}`), { input: '{"a": 3, "b": 5}' })
  t.same(pinned.body, { data: 8, type: 'number' })
})

t.test('go-faas: run-now', async (t) => {
  const r = await post(u('/run-now'), { language: 'javascript', code: 'return { sum: event.a + event.b }', input: '{"a": 10, "b": 20}' })
  t.same([r.status, r.body], [200, { data: { sum: 30 }, type: 'json' }])
  const ts = await post(u('/run-now'), { language: 'typescript', code: 'const n: number = event.n\nreturn n * 2', input: { n: 21 } })
  t.same(ts.body, { data: 42, type: 'number' }, 'input may be a JSON value too')
  const text = await post(u('/run-now'), { language: 'python', code: 'print("hello world")' })
  t.same(text.body, { data: 'hello world', type: 'text' })
})

t.test('go-faas: SSE streams each log line as it happens, then the result', async (t) => {
  const events = await sse(u('/run-now'), {
    language: 'python',
    code: 'import time\nfor i in range(3):\n    print(i)\n    time.sleep(0.3)\nreturn "done"',
    input: '{}',
    stream: true
  })
  t.same(events.map((e) => e.event), [
    { event: 'log', data: '0', type: 'text' },
    { event: 'log', data: '1', type: 'text' },
    { event: 'log', data: '2', type: 'text' },
    { event: 'result', data: 'done', type: 'string' }
  ])
  const [first, , , last] = events
  t.ok((last?.at ?? 0) - (first?.at ?? 0) >= 700, `first log came ${(last?.at ?? 0) - (first?.at ?? 0)} ms before the result, not buffered`)
})

t.test('SSE reports a script error as an error event', async (t) => {
  const events = await sse(u('/run-now'), { language: 'javascript', code: 'console.log("x")\nthrow new TypeError("nope")', stream: true })
  t.same(events[0]?.event, { event: 'log', data: 'x', type: 'text' })
  t.match(events[1]?.event, { event: 'error', data: 'nope', type: 'text', code: 'script_error', name: 'TypeError' })
})

t.test('rejects bad requests with a stable code naming the field', async (t) => {
  const cases: Array<[string, unknown, number, string, string?]> = [
    ['/run-now', '{not json', 400, 'invalid_json'],
    ['/run-now', '[1]', 400, 'invalid_json'],
    ['/run-now', { code: 'return 1' }, 400, 'invalid_field', 'language'],
    ['/run-now', { language: 'ruby', code: 'x' }, 400, 'invalid_field', 'language'],
    ['/run-now', { language: 'python' }, 400, 'invalid_field', 'code'],
    ['/run-now', { language: 'python', code: '  \n' }, 400, 'invalid_field', 'code'],
    ['/run-now', { language: 'python', code: 5 }, 400, 'invalid_field', 'code'],
    ['/run-now', { language: 'python', code: 'return 1', input: 'not json' }, 400, 'invalid_field', 'input'],
    ['/run-now', { language: 'python', code: 'return 1', stream: 'yes' }, 400, 'invalid_field', 'stream'],
    ['/run-now', { language: 'python', code: 'return 1', timeout: -1 }, 400, 'invalid_field', 'timeout'],
    ['/run-now', { language: 'python', code: 'x'.repeat(5000) }, 413, 'code_too_large', 'code'],
    ['/run-now', { language: 'python', code: 'return 1', input: { big: 'y'.repeat(3000) } }, 413, 'input_too_large', 'input'],
    ['/upload', { path: 'a/../b', language: 'python', code: 'return 1' }, 400, 'invalid_field', 'path'],
    ['/upload', { path: 'a\u0001b', language: 'python', code: 'return 1' }, 400, 'invalid_field', 'path'],
    ['/upload', { path: 'p'.repeat(300), language: 'python', code: 'return 1' }, 400, 'invalid_field', 'path'],
    ['/upload', { path: 'a b', language: 'python', code: 'return 1' }, 400, 'invalid_field', 'path'],
    ['/upload', { path: '', language: 'python', code: 'return 1' }, 400, 'invalid_field', 'path'],
    ['/upload', { language: 'python', code: 'return 1' }, 400, 'invalid_field', 'path']
  ]
  for (const [route, body, status, code, field] of cases) {
    const r = await post(u(route), body)
    t.equal(r.status, status, `${route} ${JSON.stringify(body).slice(0, 60)}`)
    t.equal(r.body?.error?.code, code)
    if (field !== undefined) t.equal(r.body.error.field, field)
    t.type(r.body.error.message, 'string')
  }
})

t.test('refuses an oversized body with 413 before reading it', async (t) => {
  const r = await post(u('/run-now'), { language: 'python', code: 'x'.repeat(100_000) })
  t.equal(r.status, 413)
  t.equal(r.body.error.code, 'body_too_large')
})

t.test('refuses JavaScript and TypeScript that do not parse at upload, with the position', async (t) => {
  const js = await post(u('/upload'), { path: 'bad/js', language: 'javascript', code: 'const a = 1\nconst = 2' })
  t.equal(js.status, 422)
  t.match(js.body.error, { code: 'syntax_error', line: 2 })
  t.match(js.body.error.message, /function\.js:2:/)
  const ts = await post(u('/upload'), { path: 'bad/ts', language: 'typescript', code: 'let x: number = (1' })
  t.match(ts.body.error, { code: 'syntax_error', line: 1 })
  const missing = await post(u('/run/bad/js'), {})
  t.equal(missing.status, 404, 'nothing was stored')
})

t.test('unknown function or version is a 404; a malformed version is a 400, never "latest"', async (t) => {
  t.equal((await post(u('/run/no/such'), {})).body.error.code, 'function_not_found')
  const up = await post(u('/upload'), { path: 'v/one', language: 'javascript', code: 'return 1' })
  const r = await post(u(`/run/v/one?version=${up.body.version + 1000}`), {})
  t.same([r.status, r.body.error.code], [404, 'version_not_found'])
  for (const bad of ['abc', '-1', '0', '1.5', '']) {
    const b = await post(u(`/run/v/one?version=${bad}`), {})
    t.same([b.status, b.body.error.code], [400, 'invalid_version'], `version=${bad}`)
  }
})

t.test('script errors, timeouts and result caps have their own codes', async (t) => {
  const err = await post(u('/run-now'), { language: 'python', code: 'def f():\n    raise KeyError("k")\nf()' })
  t.equal(err.status, 422)
  t.match(err.body.error, { code: 'script_error', name: 'KeyError', stack: /function\.py", line 2/ })
  const slow = await post(u('/run-now'), { language: 'javascript', code: 'for(;;){}', timeout: 0.5 })
  t.same([slow.status, slow.body.error.code], [504, 'timeout'])
  const started = Date.now()
  const capped = await post(u('/run-now'), { language: 'python', code: 'while True:\n    pass', timeout: 60 })
  t.match(capped.body.error, { code: 'timeout', timeoutMs: 5000 }, 'a per-call timeout above TIMEOUT_SCRIPT is capped at it')
  t.ok(Date.now() - started < 30_000, `and killed after ${Date.now() - started} ms, at TIMEOUT_SCRIPT (5 s), not at the 60 s asked for`)
  const big = await post(u('/run-now'), { language: 'javascript', code: 'return "z".repeat(10000)' })
  t.same([big.status, big.body.error.code], [422, 'result_too_large'])
})

t.test('a full queue answers 503 overloaded with Retry-After', async (t) => {
  await post(u('/upload'), { path: 'slow/one', language: 'python', code: 'import time\ntime.sleep(0.5)\nreturn 1' })
  // One sandbox for this function (WARM_MAX_PER_FUNCTION=1), two may wait (QUEUE_MAX=2).
  const calls = Array.from({ length: 6 }, async () => await post(u('/run/slow/one'), {}))
  const replies = await Promise.all(calls)
  const overloaded = replies.filter((r) => r.status === 503)
  t.ok(overloaded.length >= 1, `${overloaded.length} of 6 overloaded`)
  for (const r of overloaded) {
    t.equal(r.body.error.code, 'overloaded')
    t.equal(r.headers.get('retry-after'), '1')
  }
  t.ok(replies.some((r) => r.status === 200))
})

t.test('lists, shows and deletes functions and versions', async (t) => {
  for (const p of ['list/a', 'list/b', 'list/c']) await post(u('/upload'), { path: p, language: 'javascript', code: 'return 1' })
  const v2 = await post(u('/upload'), { path: 'list/a', language: 'python', code: 'return 2' })
  const page1 = await get(u('/functions?limit=2'))
  t.equal(page1.body.functions.length, 2)
  const all: Array<{ path: string }> = []
  let cursor: string | null = ''
  while (cursor !== null) {
    const page: any = await get(u(`/functions?limit=2&cursor=${encodeURIComponent(cursor)}`))
    all.push(...page.body.functions)
    cursor = page.body.next_cursor
  }
  t.ok(['list/a', 'list/b', 'list/c'].every((p) => all.some((f) => f.path === p)))
  const shown = await get(u('/functions/list/a'))
  t.equal(shown.body.versions.length, 2)
  t.match(shown.body.versions[1], { version: v2.body.version, language: 'python', size: 8, sha256: /^[0-9a-f]{64}$/, created: Number })
  const delOne = await get(u(`/functions/list/a?version=${v2.body.version}`), 'DELETE')
  t.same(delOne.body, { path: 'list/a', deleted: 1 })
  t.same((await post(u('/run/list/a'), {})).body, { data: 1, type: 'number' }, 'latest is the older version again')
  t.equal((await get(u('/functions/list/a'), 'DELETE')).body.deleted, 1)
  t.equal((await post(u('/run/list/a'), {})).status, 404)
  t.equal((await get(u('/functions/list/a'))).status, 404)
  const again = await post(u('/upload'), { path: 'list/a', language: 'python', code: 'return 3' })
  t.ok(again.body.version > v2.body.version, 'a deleted version number is never handed out again')
})

t.test('health: liveness and readiness with pools and the limits backend', async (t) => {
  t.same((await get(u('/healthz'))).body, { status: 'ok' })
  let ready = await get(u('/readyz'))
  await waitFor(async () => (ready = await get(u('/readyz'))).status === 200, 10_000, 'pools refilled after the tests above')
  t.equal(ready.status, 200)
  t.match(ready.body, { ready: true, redis: true, limits: { backend: String }, pools: Array })
  t.same(ready.body.pools.map((p: any) => p.language).sort(), ['javascript', 'python', 'typescript'])
})

t.test('unknown routes and methods', async (t) => {
  t.same([(await get(u('/nope'))).status, (await get(u('/nope'))).body.error.code], [404, 'route_not_found'])
  t.same([(await get(u('/run-now'))).status, (await get(u('/run-now'))).body.error.code], [405, 'method_not_allowed'])
})

t.test('one log line per request, without code or input', async (t) => {
  await post(u('/run-now'), { language: 'python', code: 'return "secret-code-marker"', input: '{"secret": "input-marker"}' })
  await waitFor(() => d.logs.some((l) => l.msg === 'request' && l.path === '/run-now' && l.language === 'python'), 5000, 'the log line of the last call')
  const lines = d.logs.filter((l) => l.msg === 'request')
  t.ok(lines.length > 10)
  t.match(lines.find((l) => l.path === '/run/math/add'), { method: 'POST', status: 200, ms: Number, language: 'python', function: 'math/add', version: Number })
  const all = JSON.stringify(d.logs)
  t.notMatch(all, /secret-code-marker|input-marker/)
})
