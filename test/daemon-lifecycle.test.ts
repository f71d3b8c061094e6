// The daemon as a process: embedded Redis with persistence, graceful SIGTERM,
// and a streaming client that goes away.
import t from 'tap'
import { get, post, sse, startDaemon, stateDir } from './helpers/daemon.js'

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
  const inflight = post(`${d.url}/run-now`, { language: 'python', code: 'import time\ntime.sleep(1)\nreturn "finished"' })
  await new Promise((resolve) => setTimeout(resolve, 300))
  const started = Date.now()
  d.proc.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 100))
  await t.rejects(fetch(`${d.url}/healthz`), 'the listening socket is closed')
  t.same((await inflight).body, { data: 'finished', type: 'string' })
  t.same(await d.exited, { code: 0, signal: null })
  t.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms`)
})

t.test('SIGTERM kills calls still running when the grace period ends', async (t) => {
  const d = await startDaemon(t, { SHUTDOWN_GRACE_SECONDS: '0.5' })
  const stuck = post(`${d.url}/run-now`, { language: 'javascript', code: 'await new Promise(() => {})' }).catch((err) => err)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const started = Date.now()
  t.same(await d.stop(), { code: 0, signal: null })
  t.ok(Date.now() - started < 4000, `stopped in ${Date.now() - started} ms`)
  await stuck
})

t.test('a streaming client that disconnects has its sandbox killed at once', async (t) => {
  const d = await startDaemon(t, { POOL_MIN: '1' })
  const controller = new AbortController()
  const events: unknown[] = []
  const stream = sse(`${d.url}/run-now`, { language: 'python', code: 'import time\nprint("started", flush=True)\ntime.sleep(30)\nreturn 1', stream: true }, controller.signal)
    .catch((err: Error) => { events.push(err.name) })
  let busy = false
  for (let i = 0; i < 100 && !busy; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    busy = (await get(`${d.url}/readyz`)).body.pools.some((p: { borrowed: number }) => p.borrowed > 0)
  }
  t.ok(busy, 'the call is running')
  controller.abort()
  await stream
  const started = Date.now()
  let freed = false
  while (!freed && Date.now() - started < 2000) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    freed = (await get(`${d.url}/readyz`)).body.pools.every((p: { borrowed: number }) => p.borrowed === 0)
  }
  t.ok(freed, `sandbox released ${Date.now() - started} ms after the disconnect`)
  const log = d.logs.find((l) => l.msg === 'request' && l.path === '/run-now')
  t.equal(log?.status, 499)
})
