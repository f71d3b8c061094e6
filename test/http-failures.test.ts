// How calls fail, over HTTP, against the real limits backend of this host: each
// failure its own code and status, Retry-After where trying again may work,
// and a caller that goes away has its sandbox killed.
import t from 'tap'
import { get, post, startDaemon, stateDir } from './helpers/daemon.js'
import { waitFor } from './helpers/wait.js'

const d = await startDaemon(t, { MAX_MEMORY: '64M', MAX_PIDS: '32', WARM_MAX_PER_FUNCTION: '1', ACQUIRE_TIMEOUT: '0.5', TIMEOUT_SCRIPT: '10' })
const u = (path: string): string => `${d.url}${path}`
const borrowed = async (): Promise<number> => ((await get(u('/readyz'))).body.pools as Array<{ borrowed: number }>).reduce((n, p) => n + p.borrowed, 0)

t.test('a memory bomb answers 422 memory_limit, a fork bomb 422 pids_limit', async (t) => {
  const memory = await post(u('/run-now'), { language: 'python', code: 'x = []\nwhile True:\n    x.append(bytearray(1 << 20))' })
  t.same([memory.status, memory.body.error.code], [422, 'memory_limit'])
  const pids = await post(u('/run-now'), { language: 'python', code: 'import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)', timeout: 2 })
  t.same([pids.status, pids.body.error.code], [422, 'pids_limit'])
  t.equal(memory.headers.get('retry-after'), null, 'no Retry-After: the same code would fail again')
})

t.test('a sandbox that exits mid-call answers 502 sandbox_crashed; one that breaks the protocol 502 protocol_error', async (t) => {
  const crashed = await post(u('/run-now'), { language: 'python', code: 'import os\nos._exit(3)' })
  t.same([crashed.status, crashed.body.error.code], [502, 'sandbox_crashed'])
  t.match(crashed.body.error.message, /exit code 3/)
  // fd 3 is the bootstrap's frame channel: a frame length of 2^32-1 is no frame.
  const broken = await post(u('/run-now'), { language: 'python', code: 'import os, time\nos.write(3, b"\\xff\\xff\\xff\\xff")\ntime.sleep(5)' })
  t.same([broken.status, broken.body.error.code], [502, 'protocol_error'])
})

t.test('no sandbox of a function free in time: 503 queue_timeout with Retry-After', async (t) => {
  t.equal((await post(u('/upload'), { path: 'fail/slow', language: 'python', code: 'import time\ntime.sleep(2)\nreturn 1' })).status, 200)
  const first = post(u('/run/fail/slow'), {}) // WARM_MAX_PER_FUNCTION=1: the only sandbox of fail/slow
  await waitFor(async () => (await borrowed()) === 1, 10_000, 'the first call to run')
  const second = await post(u('/run/fail/slow'), {})
  t.same([second.status, second.body.error.code], [503, 'queue_timeout'])
  t.equal(second.headers.get('retry-after'), '1')
  t.same((await first).body, { data: 1, type: 'number' })
})

t.test('a caller that goes away before a non-streamed answer has its sandbox killed', async (t) => {
  const controller = new AbortController()
  const gone = fetch(u('/run-now'), { method: 'POST', body: JSON.stringify({ language: 'python', code: 'import time\ntime.sleep(30)\nreturn 1' }), signal: controller.signal }).catch(() => null)
  await waitFor(async () => (await borrowed()) === 1, 10_000, 'the call to run')
  controller.abort()
  await gone
  // The call sleeps 30 s: its sandbox freed within 10 s was killed, not finished.
  await waitFor(async () => (await borrowed()) === 0, 10_000, 'the sandbox to be released')
  await waitFor(() => d.logs.some((l) => l.msg === 'request' && l.status === 499), 5000, 'the request logged as 499')
  t.pass('killed, logged as 499')
})

t.test('the embedded redis-server is restarted when it dies; stored functions survive', async (t) => {
  const dir = stateDir()
  const e = await startDaemon(t, { STATE_DIR: dir })
  t.equal((await post(`${e.url}/upload`, { path: 'fail/kept', language: 'python', code: 'return "kept"' })).status, 200)
  const before = e.logs.length
  const { execFileSync } = await import('node:child_process')
  execFileSync('pkill', ['-KILL', '-f', `redis-server.*${dir}`])
  await waitFor(() => e.logs.slice(before).some((l) => l.msg === 'embedded redis-server exited'), 10_000, 'the daemon to see redis exit')
  await waitFor(async () => (await post(`${e.url}/run/fail/kept`, {})).status === 200, 15_000, 'the store to answer again')
  t.same((await post(`${e.url}/run/fail/kept`, {})).body, { data: 'kept', type: 'string' })
})

t.test('a runtime that cannot start answers 503 runtime_unavailable with Retry-After, saying why', async (t) => {
  // No sandbox says ready within a millisecond: every start fails (a memory limit
  // too small to start in is no sure way: a forked child shares the zygote's pages).
  const e = await startDaemon(t, { SPAWN_TIMEOUT: '0.001', ACQUIRE_TIMEOUT: '2', POOL_MIN: '1' })
  const r = await post(`${e.url}/run-now`, { language: 'python', code: 'return 1' })
  t.same([r.status, r.body.error.code], [503, 'runtime_unavailable'])
  t.match(r.body.error.message, /python sandboxes cannot start/)
  t.equal(r.headers.get('retry-after'), '1')
  t.equal((await get(`${e.url}/readyz`)).status, 503, 'and the daemon is not ready')
})
