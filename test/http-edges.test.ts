// Corners of the HTTP API that the main suite does not reach: stderr and
// stored functions over SSE, the truncation header, listing and path errors,
// deletes of what is not there.
import { connect } from 'node:net'
import t from 'tap'
import { get, post, sse, startDaemon } from './helpers/daemon.js'
import { TestRedis } from './helpers/redis.js'

const redis = await TestRedis.start(t)
const d = await startDaemon(t, { REDIS_URL: redis.url, LOG_MAX_BYTES: '64' })
const u = (path: string): string => `${d.url}${path}`

t.test('SSE marks stderr lines with stream: "stderr" (stdout lines carry no stream)', async (t) => {
  const events = await sse(u('/run-now'), { language: 'python', code: 'import sys\nprint("out")\nprint("err", file=sys.stderr)\nreturn 1', stream: true })
  t.same(events.map((e) => e.event), [
    { event: 'log', data: 'out', type: 'text' },
    { event: 'log', data: 'err', type: 'text', stream: 'stderr' },
    { event: 'result', data: 1, type: 'number' }
  ])
})

t.test('SSE on a stored function: /run/*path with stream: true', async (t) => {
  t.equal((await post(u('/upload'), { path: 'edges/sse', language: 'javascript', code: 'console.log("hi " + event.n)\nreturn event.n * 2' })).status, 200)
  const events = await sse(u('/run/edges/sse'), { input: { n: 21 }, stream: true })
  t.same(events.map((e) => e.event), [
    { event: 'log', data: 'hi 21', type: 'text' },
    { event: 'result', data: 42, type: 'number' }
  ])
})

t.test('logs cut at LOG_MAX_BYTES: the answer says so in X-Hearth-Logs-Truncated', async (t) => {
  const cut = await post(u('/run-now'), { language: 'python', code: 'for i in range(100):\n    print("line", i)\nreturn "done"' })
  t.same(cut.body, { data: 'done', type: 'string' })
  t.equal(cut.headers.get('x-hearth-logs-truncated'), '1')
  const whole = await post(u('/run-now'), { language: 'python', code: 'print("short")\nreturn "done"' })
  t.equal(whole.headers.get('x-hearth-logs-truncated'), null, 'absent when nothing was cut')
})

t.test('?limit= out of range or not a number is invalid_field naming limit', async (t) => {
  for (const bad of ['0', '1001', 'ten', '-1', '1.5', '']) {
    const r = await get(u(`/functions?limit=${bad}`))
    t.same([r.status, r.body.error.code, r.body.error.field], [400, 'invalid_field', 'limit'], `limit=${bad}`)
  }
  t.equal((await get(u('/functions?limit=1000'))).status, 200)
})

t.test('percent-encoded paths are decoded before they are checked', async (t) => {
  t.equal((await post(u('/upload'), { path: 'edges/enc', language: 'python', code: 'return "enc"' })).status, 200)
  t.same((await post(u('/run/edges%2Fenc'), {})).body, { data: 'enc', type: 'string' }, '%2F is a /')
  t.equal((await get(u('/functions/edges%2fenc'))).body.path, 'edges/enc')
  // One segment for fetch's URL parser (which would resolve a bare %2E%2E), edges/../x once decoded.
  const dots = await post(u('/run/edges%2F%2E%2E%2Fx'), {})
  t.same([dots.status, dots.body.error.code], [400, 'invalid_field'], 'an encoded .. is still refused')
  const broken = await post(u('/run/edges/%E0%A4%A'), {})
  t.same([broken.status, broken.body.error.code], [400, 'invalid_field'])
  t.match(broken.body.error.message, /percent-encoding/)
})

t.test('DELETE of an unknown path or version is 404 with its own code', async (t) => {
  const path = await get(u('/functions/edges/never-uploaded'), 'DELETE')
  t.same([path.status, path.body.error.code], [404, 'function_not_found'])
  t.equal((await post(u('/upload'), { path: 'edges/del', language: 'python', code: 'return 1' })).status, 200)
  const version = await get(u('/functions/edges/del?version=999'), 'DELETE')
  t.same([version.status, version.body.error.code], [404, 'version_not_found'])
  t.same((await post(u('/run/edges/del'), {})).body, { data: 1, type: 'number' }, 'the function is untouched')
})

t.test('/readyz has the documented shape, field by field', async (t) => {
  const keys = (o: unknown): string[] => Object.keys(o as object).sort()
  const r = await get(u('/readyz'))
  t.same(keys(r.body), ['limits', 'pools', 'ready', 'redis', 'runtimes', 'sandboxes', 'warm'])
  const cgroups = /^cgroup[12]$/.test(r.body.limits.backend)
  t.same(keys(r.body.limits), ['backend', ...(cgroups ? ['cgroups'] : []), 'cpus', 'detail', 'memoryBytes', 'pids', 'sandboxes'])
  if (cgroups) t.same(keys(r.body.limits.cgroups), ['made', 'reused', 'spare'])
  t.same(keys(r.body.runtimes), ['node', 'python'])
  for (const runtime of ['node', 'python']) {
    // bornInCgroup: with a cgroup backend, whose sandboxes zygotes start in their cgroups
    // hugeTextReason, pinReason: only where the code could not move (no transparent huge pages), where nothing was pinned (io_uring refused, RLIMIT_MEMLOCK short)
    const moved = r.body.runtimes[runtime].hugeTextPages > 0
    const pinned = r.body.runtimes[runtime].pinnedPages > 0
    t.same(keys(r.body.runtimes[runtime]), [...(cgroups ? ['bornInCgroup'] : []), 'currentForks', 'forks', 'hugeTextPages', ...(moved ? [] : ['hugeTextReason']), 'mode', ...(pinned ? [] : ['pinReason']), 'pinnedPages', 'precompilePages', 'prefaultPages', 'premapPages', 'pretouchedForks', 'retiring', 'start', 'started', 'zygotes'])
    t.ok(r.body.runtimes[runtime].prefaultPages > 0, `the ${runtime} zygote's probe learned the pages a child writes`)
  }
  t.same(r.body.pools.map((p: unknown) => keys(p)), Array(3).fill(['borrowed', 'consecutiveFailures', 'language', 'lastError', 'ready', 'spawned', 'starting', 'waiting']))
  t.same(keys(r.body.warm), ['functions', 'idle', 'sandboxes', 'waiting'])
  t.type(r.body.sandboxes, 'number')
})

t.test('HEAD of a GET route: its status and headers, Content-Length the GET body\'s, no body; the connection serves on', async (t) => {
  const socket = connect(d.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let got = ''
  const waiters: Array<() => void> = []
  socket.on('data', (chunk) => { got += chunk.toString('latin1'); for (const w of waiters.splice(0)) w() })
  const until = async (done: () => boolean): Promise<void> => { while (!done()) await new Promise<void>((resolve) => waiters.push(resolve)) }
  // Answers that do not change between the two requests: JSON (json()) and the console's page (raw()).
  for (const path of ['/healthz', '/openapi.json', '/']) {
    got = ''
    socket.write(`HEAD ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
    await until(() => got.includes('\r\n\r\n'))
    const head = got
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
    await until(() => /\r\n\r\n[^]*\r\n\r\n/.test(got) && got.length - got.lastIndexOf('\r\n\r\n') - 4 >= Number(/Content-Length: (\d+)/.exec(got.slice(head.length))?.[1] ?? Infinity))
    t.match(head, /^HTTP\/1\.1 200 OK\r\n/, `HEAD ${path}`)
    t.ok(head.endsWith('\r\n\r\n') && got.startsWith(head + 'HTTP/1.1 200 OK'), 'no body before the next answer')
    const getBody = got.slice(got.lastIndexOf('\r\n\r\n') + 4)
    t.equal(/Content-Length: (\d+)/.exec(head)?.[1], String(Buffer.byteLength(getBody, 'latin1')), 'the GET body\'s length')
  }
  const post = await fetch(u('/run-now'), { method: 'HEAD' })
  t.equal(post.status, 405, 'a POST route\'s HEAD is method_not_allowed')
})
