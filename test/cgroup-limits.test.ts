// Per-sandbox cgroups against the real kernel: memory and pids ceilings, the CPU
// quota, and no cgroup left behind (or kept past its use: spares.ts).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { call, startRunner, waitFor } from './helpers/runner.js'

const { runner, limits } = await startRunner(t, { MAX_MEMORY: '64M', MAX_PIDS: '32', POOL_MIN: '1', POOL_MAX: '4' })
if (limits.name !== 'cgroup1' && limits.name !== 'cgroup2') {
  t.fail(`no cgroup backend on this machine (got ${limits.name}); these tests need root and writable cgroups`)
}
const parents = limits.detail.split(' ')
/** Sandbox cgroups (`<language>-<pid>-<n>`) in every hierarchy. */
const sandboxCgroups = (): number => parents.reduce((n, dir) => n + (existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && /^[a-z]+-\d+-\d+$/.test(d.name)).length : 0), 0)

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

t.test('a busy loop is held to its CPU quota: the quota is set and the kernel throttles it', async (t) => {
  // Counters, not timings: a ratio of CPU to wall time flakes on a loaded machine.
  const quarter = await startRunner(t, { MAX_CPUS: '0.25', POOL_MIN: '1' })
  const sandboxDirs = (): string[] => quarter.limits.detail.split(' ').flatMap((dir) =>
    existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name)) : [])
  const read = (file: string): string => { try { return readFileSync(file, 'utf8') } catch { return '' } }
  const spin = call(quarter.runner, { language: 'python', code: 'import time\nend = time.monotonic() + 3\nwhile time.monotonic() < end:\n    pass\nreturn 1', input: '{}', timeoutMs: 15_000 })
  let quota = ''
  await waitFor(() => sandboxDirs().some((dir) => {
    const throttled = Number(/^nr_throttled (\d+)$/m.exec(read(join(dir, 'cpu.stat')))?.[1] ?? 0)
    if (throttled > 0) quota = read(join(dir, 'cpu.max')).trim() || read(join(dir, 'cpu.cfs_quota_us')).trim()
    return throttled > 0
  }), 10_000, 'cpu.stat nr_throttled > 0 in a sandbox cgroup')
  t.match(quota, /^25000( 100000)?$/, `its quota: ${quota} µs per 100 ms period`)
  t.equal((await spin).result?.data, '1', 'and it still finishes')
})

t.test('cgroups are handed on or removed with their sandboxes; no leak after 500 sandboxes', async (t) => {
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
  const counts = limits.cgroups?.()
  t.ok(counts !== undefined && counts.reused >= done / 2, `most sandboxes got an ended one's cgroup: ${JSON.stringify(counts)}`)
  // Every sandbox cgroup left is a live sandbox's or a spare (at most 64).
  // Removal is retried while a pid-namespaced tree stays charged (~2 s).
  const accounted = (): boolean => sandboxCgroups() === parents.length * (runner.stats().sandboxes + (limits.cgroups?.().spare ?? 0))
  await waitFor(accounted, 20_000, 'cgroups of live sandboxes and spares only')
  t.ok((limits.cgroups?.().spare ?? 0) <= 64, 'spares bounded')
})

t.test('a sandbox may be given limits of its own (a build sandbox\'s): written to its cgroup', async (t) => {
  // The joining prefix is sh -c SCRIPT hearth-join N <cgroup.procs files...> (cgroupfs.ts).
  const reader = (l: { prefix: readonly string[] }) => (name: string): string | undefined => {
    const dir = l.prefix.slice(5).map((procs) => procs.replace(/cgroup\.procs$/, '')).find((d) => existsSync(join(d, name)))
    return dir === undefined ? undefined : readFileSync(join(dir, name), 'utf8').trim()
  }
  const own = await limits.create(`build-${process.pid}-1`, { memoryBytes: 96 << 20, cpus: 0.25, pids: 40 })
  t.teardown(async () => await own.destroy())
  const read = reader(own)
  t.equal(read(limits.name === 'cgroup2' ? 'memory.max' : 'memory.limit_in_bytes'), String(96 << 20))
  t.equal(read('pids.max'), '40')
  t.match(read(limits.name === 'cgroup2' ? 'cpu.max' : 'cpu.cfs_quota_us'), /^25000\b/)
  const other = await limits.create(`build-${process.pid}-2`)
  t.teardown(async () => await other.destroy())
  t.equal(reader(other)('pids.max'), '32', 'the others keep the backend\'s (MAX_PIDS)')
})
