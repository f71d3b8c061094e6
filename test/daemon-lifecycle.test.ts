// The daemon as a process: embedded Redis with persistence, graceful SIGTERM,
// and a streaming client that goes away.
import t from 'tap'
import { get, post, sse, startDaemon, stateDir, type Daemon } from './helpers/daemon.js'

/** Resolves once the daemon has `n` sandboxes busy with calls (no sleeping and hoping). */
async function busy (d: Daemon, n = 1): Promise<void> {
  const end = Date.now() + 10_000
  for (;;) {
    const pools = (await get(`${d.url}/readyz`)).body.pools as Array<{ borrowed: number }>
    if (pools.reduce((sum, p) => sum + p.borrowed, 0) >= n) return
    if (Date.now() > end) throw new Error(`${n} calls never started`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
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
  const inflight = post(`${d.url}/run-now`, { language: 'python', code: 'import time\ntime.sleep(1)\nreturn "finished"' })
  await busy(d)
  const started = Date.now()
  d.proc.kill('SIGTERM')
  await waitForLog(d, 'stopping')
  let refused = false
  for (let i = 0; i < 100 && !refused; i++) {
    refused = await fetch(`${d.url}/healthz`).then(() => false, () => true)
    if (!refused) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.ok(refused, 'the listening socket is closed while the call in flight runs on')
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

async function waitForLog (d: Daemon, msg: string): Promise<void> {
  const end = Date.now() + 5000
  while (!d.logs.some((l) => l.msg === msg)) {
    if (Date.now() > end) throw new Error(`no log line ${JSON.stringify(msg)}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
