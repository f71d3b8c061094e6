// Per-sandbox cgroups against the real kernel: memory and pids ceilings, the CPU
// quota, and no cgroup left behind.
import { existsSync, readdirSync } from 'node:fs'
import t from 'tap'
import { call, startRunner, waitFor } from './helpers/runner.js'

const { runner, limits } = await startRunner(t, { MAX_MEMORY: '64M', MAX_PIDS: '32', POOL_MIN: '1', POOL_MAX: '4' })
if (limits.name !== 'cgroup1' && limits.name !== 'cgroup2') {
  t.fail(`no cgroup backend on this machine (got ${limits.name}); these tests need root and writable cgroups`)
}
const parents = limits.detail.split(' ')
const children = (): number => parents.reduce((n, dir) => n + (existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).length : 0), 0)

t.test('a memory bomb answers memory_limit within seconds, and the next call runs', async (t) => {
  const bombs = [
    ['python', 'x = []\nwhile True:\n    x.append(bytearray(1 << 20))'],
    ['javascript', 'const x = []\nfor (;;) x.push(Buffer.alloc(1 << 20, 1))']
  ] as const
  for (const [language, code] of bombs) {
    const started = Date.now()
    const r = await call(runner, { language, code, input: '{}', timeoutMs: 15_000 })
    t.equal(r.error?.code, 'memory_limit', language)
    t.ok(Date.now() - started < 10_000, `${language} answered in ${Date.now() - started} ms`)
    const next = await call(runner, { language, code: 'return 1', input: '{}' })
    t.equal(next.result?.data, '1')
  }
})

t.test('a fork bomb is held at the pids ceiling and ends as pids_limit', async (t) => {
  const code = 'import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)'
  const started = Date.now()
  const r = await call(runner, { language: 'python', code, input: '{}', timeoutMs: 2000 })
  t.equal(r.error?.code, 'pids_limit')
  t.ok(Date.now() - started < 6000, `ended in ${Date.now() - started} ms`)
  const next = await call(runner, { language: 'python', code: 'return "alive"', input: '{}' })
  t.equal(next.result?.data, '"alive"')
})

t.test('a busy loop gets no more CPU than its quota', async (t) => {
  const code = 'import time\nw0, c0 = time.monotonic(), time.process_time()\nwhile time.monotonic() - w0 < 1.0:\n    pass\nreturn (time.process_time() - c0) / (time.monotonic() - w0)'
  const quarter = await startRunner(t, { MAX_CPUS: '0.25', POOL_MIN: '1' })
  const slow = await call(quarter.runner, { language: 'python', code, input: '{}' })
  const full = await call(runner, { language: 'python', code, input: '{}' })
  const slowRatio = Number(slow.result?.data)
  const fullRatio = Number(full.result?.data)
  t.ok(slowRatio > 0.1 && slowRatio <= 0.35, `MAX_CPUS=0.25 got ${slowRatio.toFixed(2)} of a core`)
  t.ok(fullRatio > slowRatio * 2, `MAX_CPUS=1 got ${fullRatio.toFixed(2)} of a core`)
})

t.test('cgroups are removed with their sandboxes; no leak after 500 sandboxes', async (t) => {
  const before = children()
  let done = 0
  const started = Date.now()
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (done < 500 && Date.now() - started < 120_000) {
      done++
      const r = await call(runner, { language: 'python', code: 'return 1', input: '{}' })
      if (r.result?.data !== '1') t.fail(`call failed: ${r.error?.code} ${r.error?.message}`)
    }
  }))
  t.ok(done >= 500, `${done} one-shot sandboxes in ${Date.now() - started} ms`)
  // Removal is retried while a pid-namespaced tree stays charged (~2 s).
  await waitFor(() => children() <= before + 4, 20_000, 'cgroups removed')
  t.ok(children() <= before + 4, `${children()} sandbox cgroups left (pool and warm sandboxes: ${before})`)
})
