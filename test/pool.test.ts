// Pools of ready sandboxes: prewarm, refill, bounded queue, and runtimes that cannot start.
import { existsSync } from 'node:fs'
import { queryObjects } from 'node:v8'
import t from 'tap'
import { Sandbox } from '../daemon/sandbox/sandbox.js'
import { call, py, pythonPool, startRunner, waitFor } from './helpers/runner.js'
import { pythonPrograms } from './helpers/zygotes.js'

t.test('prewarms every language and refills after one-shot sandboxes are destroyed', async (t) => {
  const { runner } = await startRunner(t, { POOL_MIN: '2' })
  const ready = (): boolean => runner.stats().pools.every((p) => p.ready >= 2)
  await waitFor(ready, 15_000, 'prewarm')
  t.ok(runner.ready())
  const spawnedBefore = pythonPool(runner)?.spawned ?? 0
  for (let i = 0; i < 4; i++) {
    const r = await call(runner, { language: 'python', code: 'return 1', input: '{}' })
    t.equal(r.result?.data, '1')
  }
  await waitFor(ready, 15_000, 'refill')
  const spawnedAfter = pythonPool(runner)?.spawned ?? 0
  t.ok(spawnedAfter >= spawnedBefore + 4, `spawned ${spawnedAfter - spawnedBefore} more`)
})

t.test('a sandbox a call took from a pool is not kept once it is gone: memory stays flat under run-now load', async (t) => {
  const { runner } = await startRunner(t, { POOL_MIN: '1', POOL_MAX: '2' })
  for (let i = 0; i < 40; i++) t.equal(await py(runner, `return ${i}`), i)
  await waitFor(() => runner.stats().sandboxes <= 4 && pythonPool(runner)?.starting === 0, 15_000, 'the one-shot sandboxes gone')
  // Counted after a full garbage collection. Before: every acquire() raced a
  // promise that lived as long as the pool, which kept each call's sandbox (41).
  const kept = queryObjects(Sandbox, { format: 'count' }) as number
  t.ok(kept <= 8, `${kept} Sandbox objects alive after 40 one-shot calls (${runner.stats().sandboxes} sandboxes running)`)
})

t.test('a full wait queue answers overloaded at once', async (t) => {
  const { runner } = await startRunner(t, { POOL_MIN: '1', POOL_MAX: '1', QUEUE_MAX: '1' })
  await waitFor(() => runner.ready(), 15_000, 'prewarm')
  const python = (): { borrowed: number, waiting: number } => pythonPool(runner) ?? { borrowed: 0, waiting: 0 }
  const slow = { language: 'python' as const, code: 'import time\ntime.sleep(2)\nreturn 1', input: '{}' }
  let firstDone = false
  const first = call(runner, slow).then((r) => { firstDone = true; return r })
  await waitFor(() => python().borrowed === 1, 15_000, 'the only sandbox busy')
  const second = call(runner, slow)
  await waitFor(() => python().waiting === 1, 15_000, 'the second call queued')
  const third = await call(runner, slow)
  t.equal(third.error?.code, 'overloaded')
  t.notOk(firstDone, 'answered while the queue was full, not after waiting for a sandbox')
  t.equal((await first).result?.data, '1')
  t.equal((await second).result?.data, '1')
})

t.test('QUEUE_MAX counts a call once, wherever it waits: a function\'s sandboxes or a language pool', async (t) => {
  const { runner } = await startRunner(t, { POOL_MIN: '1', POOL_MAX: '1', QUEUE_MAX: '1', WARM_MAX_PER_FUNCTION: '1', ACQUIRE_TIMEOUT: '10' })
  await waitFor(() => runner.ready(), 15_000, 'prewarm')
  const slow = { language: 'python' as const, code: 'import time\ntime.sleep(2)\nreturn 1', input: '{}', functionKey: 'q/slow@1' }
  const first = call(runner, slow) // binds the only python sandbox to q/slow@1
  await waitFor(() => pythonPool(runner)?.borrowed === 1, 15_000, 'the first call to run')
  const second = call(runner, slow) // waits for q/slow@1's sandbox: the one place in the queue
  await waitFor(() => runner.stats().warm.waiting === 1, 15_000, 'the second call to wait')
  const third = await call(runner, { language: 'python', code: 'return 3', input: '{}' }) // would wait for the python pool
  t.equal(third.error?.code, 'overloaded', 'one queue: the pool does not add places of its own')
  t.equal((await first).result?.data, '1')
  t.equal((await second).result?.data, '1')
})

t.test('POOL_MIN=0: nothing started ahead, ready at once, sandboxes started on demand', async (t) => {
  const { runner } = await startRunner(t, { POOL_MIN: '0' })
  t.ok(runner.ready(), 'ready with no sandbox started')
  t.same(runner.stats().pools.map((p) => p.spawned), [0, 0, 0])
  const r = await call(runner, { language: 'python', code: 'return 1', input: '{}' })
  t.equal(r.result?.data, '1')
  t.ok(runner.ready())
})

t.test('a runtime that cannot start backs off instead of spinning, and says why', async (t) => {
  const failures: number[] = []
  const { runner } = await startRunner(t, { POOL_MIN: '1', ACQUIRE_TIMEOUT: '2' }, {
    runtimes: { python: { name: 'python', command: ['/usr/bin/python3', '-c', 'import sys; sys.stderr.write("no runtime here\\n"); sys.exit(3)'], binds: [] } },
    onSpawnError: (language, _err, n) => { if (language === 'python') failures.push(n) }
  })
  const r = await call(runner, { language: 'python', code: 'return 1', input: '{}' })
  t.equal(r.error?.code, 'runtime_unavailable')
  t.match(r.error?.message, /no runtime here/)
  // Backoff doubles from 100 ms: a tight loop would fail hundreds of times in 2 s.
  t.ok(failures.length >= 2 && failures.length <= 8, `${failures.length} attempts in ~2 s`)
  const stats = pythonPool(runner)
  t.match(stats?.lastError, /no runtime here/)
  t.notOk(runner.ready())
  const js = await call(runner, { language: 'javascript', code: 'return 2', input: '{}' })
  t.equal(js.result?.data, '2', 'other languages are unaffected')
})

t.test('a runtime that never says ready is killed after the spawn timeout', async (t) => {
  const { runner } = await startRunner(t, { POOL_MIN: '1', SPAWN_TIMEOUT: '0.5', ACQUIRE_TIMEOUT: '1.5' }, {
    runtimes: { python: { name: 'python', command: ['/bin/sleep', '600'], binds: [] } }
  })
  const r = await call(runner, { language: 'python', code: 'return 1', input: '{}' })
  t.equal(r.error?.code, 'runtime_unavailable')
  t.match(r.error?.message, /not ready after 500 ms/)
})

t.test('closing while sandboxes start counts and reports no failed start', async (t) => {
  const failures: Error[] = []
  const { runner } = await startRunner(t, { POOL_MIN: '2' }, {
    runtimes: { python: { name: 'python', command: ['/bin/sleep', '600'], binds: [] } },
    onSpawnError: (language, err) => { if (language === 'python') failures.push(err) }
  })
  await waitFor(() => pythonPool(runner)?.starting === 2, 10_000, 'two starts in flight')
  await runner.close()
  t.same(failures.map((e) => e.message), [], 'a stop is not a start failure (logged as an error before)')
  t.equal(pythonPool(runner)?.consecutiveFailures, 0)
})

t.test('closing tears down sandboxes that ended on their own and were not torn down yet, so no cgroup is left behind', async (t) => {
  const { runner, limits } = await startRunner(t)
  if (!limits.name.startsWith('cgroup')) { t.pass(`limits backend ${limits.name}: no cgroups to leave`); return }
  const parents = limits.detail.split(' ')
  t.ok(parents.length > 0 && parents.every((dir) => existsSync(dir)), 'the backend\'s cgroups')
  // A warm sandbox of a stored function whose program was killed from outside while idle: ended, not yet torn down.
  t.same((await call(runner, { language: 'python', code: 'return 1', input: '{}', functionKey: 'a@1' })).result?.data, '1')
  for (const pid of pythonPrograms()) process.kill(pid, 'SIGKILL')
  await waitFor(() => runner.stats().sandboxes === 0, 5000, 'the sandbox ended')
  await runner.close()
  await limits.close()
  t.same(parents.filter((dir) => existsSync(dir)), [], 'every cgroup removed (left before: the ended sandbox\'s cgroup, and so its parent)')
})

t.test('closing kills every sandbox, busy ones included', async (t) => {
  const { runner } = await startRunner(t, { POOL_MIN: '1' })
  const busy = call(runner, { language: 'javascript', code: 'await new Promise(() => {})', input: '{}', timeoutMs: 30_000 })
  await waitFor(() => runner.stats().pools.some((p) => p.borrowed > 0), 10_000, 'busy sandbox')
  await runner.close()
  const r = await busy
  t.equal(r.error?.code, 'shutting_down', 'the busy call answers that the daemon stopped')
  t.equal(runner.stats().sandboxes, 0)
})

t.test('closing while a call waits for a sandbox still starting ends that call too', async (t) => {
  // A runtime that never says ready: the call waits for a sandbox that is still starting however fast
  // real sandboxes start (a forked node sandbox is ready in ~20 ms, less than one poll of waitFor).
  // ACQUIRE_TIMEOUT is short because generic-pool's own timer for the queued call outlives close()
  // and would hold this file's process open that long.
  const { runner } = await startRunner(t, { POOL_MIN: '0', SPAWN_TIMEOUT: '60', ACQUIRE_TIMEOUT: '3' }, {
    runtimes: { node: { name: 'node', command: ['/bin/sleep', '600'], binds: [] } }
  })
  const waiting = call(runner, { language: 'javascript', code: 'return 1', input: '{}', timeoutMs: 30_000 })
  await waitFor(() => runner.stats().pools.some((p) => p.starting > 0 && p.waiting > 0), 5_000, 'a sandbox starting for the call')
  const started = Date.now()
  await runner.close()
  const r = await waiting
  t.equal(r.error?.code, 'shutting_down')
  t.ok(Date.now() - started < 3000, `closed in ${Date.now() - started} ms`)
  t.equal(runner.stats().sandboxes, 0)
})

t.test('a sandbox ended after its call reads its limit counters once, for the call, not again as it exits', async (t) => {
  let reads = 0
  const { runner } = await startRunner(t, {}, {
    wrapLimits: (real) => ({
      ...real,
      create: async (id, own) => {
        const limits = await real.create(id, own)
        return { ...limits, breach: () => { reads++; return limits.breach() } }
      }
    })
  })
  const exited = (): number => pythonPool(runner)?.spawned ?? 0
  for (let i = 0; i < 5; i++) t.equal((await call(runner, { language: 'python', code: 'return 1', input: '{}' })).result?.data, '1')
  await waitFor(() => runner.stats().sandboxes === 0, 10_000, 'every run-now sandbox gone')
  t.equal(reads, 5, `${reads} reads for 5 calls (${exited()} sandboxes)`)
})
