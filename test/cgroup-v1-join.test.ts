// cgroup v1: each forked program joins its sandbox's cgroups itself
// (runtimes/zygote/isolate.c, join_cgroups; limits/join-v1.ts), so the daemon
// finds no host pid and writes no cgroup.procs; where a zygote cannot write a
// sandbox's cgroup.procs, it says so and the daemon places its children.
import { chownSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import t from 'tap'
import type { LimitsBackend, SandboxLimits } from '../daemon/sandbox/limits/types.js'
import type { Runner } from '../daemon/pool/runner.js'
import { call, startRunner } from './helpers/runner.js'
import { pythonRuntime } from './helpers/zygotes.js'

const probe = await startRunner(t, { ZYGOTE: 'off' })
const skip = probe.limits.name === 'cgroup1' ? false : `the limits backend here is ${probe.limits.name}`

/** The cgroup.procs files of a sandbox's cgroups: its joining prefix is sh -c SCRIPT hearth-join N <files...> (cgroupfs.ts). */
const procsOf = (l: SandboxLimits): string[] => l.prefix.slice(5)

/** The real backend, counting the sandboxes the daemon placed; `made` sees each sandbox's limits first. */
function counting (made: (l: SandboxLimits) => void = () => {}): { wrap: (real: LimitsBackend) => LimitsBackend, placed: () => number, files: string[] } {
  let placed = 0
  const files: string[] = []
  const wrap = (real: LimitsBackend): LimitsBackend => ({
    ...real,
    create: async (id, own) => {
      const limits = await real.create(id, own)
      made(limits)
      files.push(...procsOf(limits))
      const place = limits.place
      return place === undefined ? limits : { ...limits, place: async (pid) => { placed++; await place(pid) } }
    }
  })
  return { wrap, placed: () => placed, files }
}

const MEMORY_BOMB = 'x = []\nwhile True:\n    x.append(bytearray(1 << 20))'

const bornIn = (runner: Runner, runtime: 'python' | 'node'): number => (runner.stats().runtimes[runtime] as { bornInCgroup?: number }).bornInCgroup ?? 0

t.test('a forked sandbox joins its cgroups itself: the daemon places none, and the cgroups are covered before user code', { skip }, async (t) => {
  // As under systemd (UMask=0077): directories the daemon makes are 0700 unless it says otherwise.
  const umask = process.umask(0o077)
  t.teardown(() => { process.umask(umask) })
  const count = counting()
  const { runner, warnings } = await startRunner(t, { POOL_MIN: '1' }, { wrapLimits: count.wrap })
  const seen = await call(runner, { language: 'python', code: 'import os\nreturn os.listdir("/run/hearth-cgroup")', input: '{}' })
  t.equal(seen.result?.data, '[]', 'an empty directory where the zygote has the hierarchies')
  const bomb = await call(runner, { language: 'python', code: MEMORY_BOMB, input: '{}', timeoutMs: 15_000 })
  t.equal(bomb.error?.code, 'memory_limit', 'held by its memory cgroup')
  const js = await call(runner, { language: 'javascript', code: 'return 6 * 7', input: '{}' })
  t.equal(js.result?.data, '42')
  t.ok(bornIn(runner, 'python') >= 2, `python sandboxes in their cgroups without the daemon: ${bornIn(runner, 'python')}`)
  t.ok(bornIn(runner, 'node') >= 1, `node ones: ${bornIn(runner, 'node')}`)
  t.equal(count.placed(), 0, 'the daemon placed none')
  t.same(warnings, [], 'no zygote fell back to the daemon placing its children')
  if (process.getuid?.() === 0) {
    const owners = new Set(count.files.map((f) => statSync(f).uid))
    t.same([...owners], [65534], 'each sandbox\'s cgroup.procs is the sandbox uid\'s')
    t.equal(statSync(`${dirname(dirname(count.files[0] as string))}/cgroup.procs`).uid, 0, 'their parent\'s stays root\'s')
  }
})

t.test('the children of a zygote that replaces a worn one join their cgroups too', { skip }, async (t) => {
  const count = counting()
  const { runner, warnings } = await startRunner(t, { ZYGOTE_MAX_FORKS: '2', POOL_MIN: '0' }, { wrapLimits: count.wrap })
  for (let i = 0; i < 5; i++) t.equal((await call(runner, { language: 'python', code: `return ${i}`, input: '{}' })).result?.data, String(i))
  const stats = pythonRuntime(runner)
  t.ok(stats.started >= 3, `${stats.started} python zygotes started`)
  t.equal(stats.bornInCgroup, stats.forks, `${stats.bornInCgroup} of ${stats.forks} joined their cgroups`)
  t.equal(count.placed(), 0)
  t.same(warnings, [])
})

t.test('a zygote that cannot write a sandbox\'s cgroup.procs says so; the daemon places its children', { skip: skip || (process.getuid?.() === 0 ? false : 'needs root to take the files back') }, async (t) => {
  // Taken back by root after the backend gave them to the sandbox uid.
  const count = counting((l) => { for (const file of procsOf(l)) chownSync(file, 0, 0) })
  const { runner, warnings } = await startRunner(t, { POOL_MIN: '1' }, { wrapLimits: count.wrap })
  const bomb = await call(runner, { language: 'python', code: MEMORY_BOMB, input: '{}', timeoutMs: 15_000 })
  t.equal(bomb.error?.code, 'memory_limit', 'still held by its memory cgroup')
  const ok = await call(runner, { language: 'python', code: 'return 1', input: '{}' })
  t.equal(ok.result?.data, '1')
  t.ok(count.placed() >= 2, `the daemon placed them: ${count.placed()}`)
  t.equal(bornIn(runner, 'python'), 0)
  t.ok(warnings.some((w) => /cannot write the sandbox cgroup's .*cgroup\.procs: Permission denied; the daemon places each child instead/.test(String(w.line))), 'the zygote said why')
})
