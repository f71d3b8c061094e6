// The daemon as a process: embedded Redis with persistence, graceful SIGTERM,
// and a streaming client that goes away.
import { connect } from 'node:net'
import t from 'tap'
import { get, post, sse, startDaemon, stateDir, type Daemon } from './helpers/daemon.js'
import { processesMentioning } from './helpers/processes.js'
import { waitFor } from './helpers/wait.js'

/** Resolves once the daemon has `n` sandboxes busy with calls (no sleeping and hoping). */
async function busy (d: Daemon, n = 1): Promise<void> {
  await waitFor(async () => (await borrowed(d)) >= n, 10_000, `${n} calls to start`)
}

/** Whether a new TCP connection to the daemon is refused. */
async function refused (url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return await new Promise((resolve) => {
    const socket = connect(Number(port), hostname)
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => resolve(true))
  })
}

async function borrowed (d: Daemon): Promise<number> {
  const pools = (await get(`${d.url}/readyz`)).body.pools as Array<{ borrowed: number }>
  return pools.reduce((sum, p) => sum + p.borrowed, 0)
}

t.test('with no Redis configured, functions persist in the embedded server across restarts', async (t) => {
  const dir = stateDir()
  const first = await startDaemon(t, { STATE_DIR: dir })
  const up = await post(`${first.url}/upload`, { path: 'keep/me', language: 'typescript', code: 'const s: string = "kept"; return s' })
  t.equal(up.status, 200)
  t.same(await first.stop(), { code: 0, signal: null })
  const second = await startDaemon(t, { STATE_DIR: dir })
  const run = await post(`${second.url}/run/keep/me`, {})
  t.same(run.body, { data: 'kept', type: 'string' })
  t.equal((await get(`${second.url}/functions/keep/me`)).body.versions[0].version, up.body.version)
})

t.test('SIGTERM lets the call in flight finish, refuses new connections, exits 0', async (t) => {
  const d = await startDaemon(t, { SHUTDOWN_GRACE_SECONDS: '10' })
  let finished = false
  const inflight = post(`${d.url}/run-now`, { language: 'python', code: 'import time\ntime.sleep(2)\nreturn "finished"' })
    .then((reply) => { finished = true; return reply })
  await busy(d)
  const started = Date.now()
  d.proc.kill('SIGTERM')
  await waitForLog(d, 'stopping')
  // A new connection, not fetch's pool: connections already open are served until the call ends.
  await waitFor(async () => await refused(d.url), 5000, 'the listening socket to close')
  t.notOk(finished, 'the listening socket is closed while the call in flight runs on')
  t.same((await inflight).body, { data: 'finished', type: 'string' })
  t.same(await d.exited, { code: 0, signal: null })
  t.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms`)
})

t.test('SIGTERM kills calls still running when the grace period ends; they answer shutting_down', async (t) => {
  const d = await startDaemon(t, { SHUTDOWN_GRACE_SECONDS: '0.5' })
  const stuck = [
    post(`${d.url}/run-now`, { language: 'javascript', code: 'await new Promise(() => {})' }),
    post(`${d.url}/run-now`, { language: 'python', code: 'import time\ntime.sleep(60)' })
  ]
  await busy(d, 2)
  const started = Date.now()
  t.same(await d.stop(), { code: 0, signal: null })
  t.ok(Date.now() - started < 4000, `stopped in ${Date.now() - started} ms`)
  for (const reply of await Promise.all(stuck)) {
    t.same([reply.status, reply.body.error.code], [503, 'shutting_down'])
    t.equal(reply.headers.get('retry-after'), '1')
  }
})

t.test('a second signal during a stop exits at once with code 1', async (t) => {
  const d = await startDaemon(t, { SHUTDOWN_GRACE_SECONDS: '60', SHUTDOWN_TIMEOUT_SECONDS: '120' })
  const stuck = post(`${d.url}/run-now`, { language: 'python', code: 'import time\ntime.sleep(60)' }).catch(() => null)
  await busy(d)
  d.proc.kill('SIGTERM')
  await waitForLog(d, 'stopping')
  const started = Date.now()
  d.proc.kill('SIGTERM')
  t.same(await d.exited, { code: 1, signal: null })
  t.ok(Date.now() - started < 5000, `exited ${Date.now() - started} ms after the second signal, not after the 60 s grace`)
  await waitForLog(d, 'second signal: exiting now')
  await stuck
})

t.test('a stop that overruns SHUTDOWN_TIMEOUT_SECONDS exits with code 1, saying so', async (t) => {
  const dir = stateDir()
  const d = await startDaemon(t, { STATE_DIR: dir, SHUTDOWN_GRACE_SECONDS: '0.2', SHUTDOWN_TIMEOUT_SECONDS: '1' })
  // The embedded redis-server, frozen: stopping it now waits 5 s for its SIGKILL.
  const redis = processesMentioning(dir)
  t.equal(redis.length, 1, 'the embedded redis-server')
  for (const pid of redis) process.kill(pid, 'SIGSTOP')
  t.teardown(() => { for (const pid of redis) try { process.kill(pid, 'SIGKILL') } catch {} })
  const started = Date.now()
  t.same(await d.stop(), { code: 1, signal: null })
  t.ok(Date.now() - started < 4000, `exited ${Date.now() - started} ms after SIGTERM`)
  await waitForLog(d, 'the stop overran SHUTDOWN_TIMEOUT_SECONDS: exiting now')
})

t.test('/readyz stays ready while every sandbox is busy: busy is not broken', async (t) => {
  const d = await startDaemon(t, { POOL_MIN: '1', POOL_MAX: '1', WARM_MAX_TOTAL: '0' })
  const running = ['python', 'javascript', 'typescript'].map(async (language) => await post(`${d.url}/run-now`, {
    language, code: language === 'python' ? 'import time\ntime.sleep(1.5)\nreturn 1' : 'await new Promise((r) => setTimeout(r, 1500))\nreturn 1'
  }))
  await busy(d, 3)
  const ready = await get(`${d.url}/readyz`)
  t.same([ready.status, ready.body.ready], [200, true])
  t.ok(ready.body.pools.every((p: { ready: number }) => p.ready === 0), 'not one idle sandbox')
  for (const r of await Promise.all(running)) t.same(r.body, { data: 1, type: 'number' })
})

t.test('a streaming client that disconnects has its sandbox killed at once', async (t) => {
  const d = await startDaemon(t, { POOL_MIN: '1' })
  const controller = new AbortController()
  const events: unknown[] = []
  const stream = sse(`${d.url}/run-now`, { language: 'python', code: 'import time\nprint("started", flush=True)\ntime.sleep(30)\nreturn 1', stream: true }, controller.signal)
    .catch((err: Error) => { events.push(err.name) })
  await busy(d)
  controller.abort()
  await stream
  // The call sleeps 30 s: its sandbox freed within 10 s means it was killed, not finished.
  await waitFor(async () => (await borrowed(d)) === 0, 10_000, 'the sandbox to be released after the disconnect')
  t.pass('sandbox released after the disconnect')
  const log = (): Record<string, unknown> | undefined => d.logs.find((l) => l.msg === 'request' && l.path === '/run-now')
  await waitFor(() => log() !== undefined, 5000, 'the request\'s log line') // lines are written in batches (daemon/log.ts)
  t.equal(log()?.status, 499)
})

async function waitForLog (d: Daemon, msg: string): Promise<void> {
  await waitFor(() => d.logs.some((l) => l.msg === msg), 5000, `the log line ${JSON.stringify(msg)}`)
}
