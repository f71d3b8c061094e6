// cgroup v2: zygotes fork each sandbox's init straight into its cgroup
// (clone3 CLONE_INTO_CGROUP), so the daemon moves nothing. The production
// path (systemd, a delegated subtree with controllers) is tested in the VM
// guests (scripts/vm/guest-test.sh); here the clone itself, on this host's
// cgroup v2 hierarchy (which may hold no controllers: a clone into a cgroup
// needs none), beside the real limits backend.
import { mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { CgroupsForZygotes } from '../daemon/sandbox/limits/fork-into.js'
import { mounts, removeCgroup } from '../daemon/sandbox/limits/cgroupfs.js'
import type { LimitsBackend } from '../daemon/sandbox/limits/types.js'
import { call, startRunner, waitFor } from './helpers/runner.js'

const v2 = mounts().find((m) => m.fstype === 'cgroup2')

function cmdlines (procsFile: string): string[] {
  try {
    return readFileSync(procsFile, 'latin1').split('\n').filter(Boolean).map((pid) => {
      try { return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim() } catch { return '' }
    })
  } catch {
    return []
  }
}

t.test('a zygote forks each sandbox\'s init into its cgroup: nothing is moved, pid 1 included', { skip: v2 === undefined ? 'no cgroup2 file system here' : false }, async (t) => {
  const parent = join((v2 as { path: string }).path, `hearth-test-clone-${process.pid}`)
  mkdirSync(parent)
  const forkInto = new CgroupsForZygotes(parent)
  const dirs = new Set<string>()
  // The real backend's limits, and beside each sandbox's a cgroup v2 directory to be born in.
  const wrapLimits = (real: LimitsBackend): LimitsBackend => ({
    ...real,
    forkInto,
    create: async (id, own) => {
      const limits = await real.create(id, own)
      const dir = join(parent, id)
      mkdirSync(dir)
      dirs.add(dir)
      return { ...limits, ...forkInto.sandbox(id), destroy: async () => { await limits.destroy(); await removeCgroup(dir); dirs.delete(dir) } }
    }
  })
  const { runner, warnings } = await startRunner(t, { POOL_MIN: '1' }, { wrapLimits })
  t.teardown(async () => {
    for (const dir of dirs) await removeCgroup(dir)
    await forkInto.close()
    rmdirSync(parent)
  })
  const py = await call(runner, { language: 'python', code: 'return [l for l in open("/proc/self/cgroup").read().splitlines() if l.startswith("0::")]', input: '{}' })
  t.equal(py.result?.data, '["0::/"]', 'its cgroup v2 directory is the root of what it sees')
  const js = await call(runner, { language: 'javascript', code: 'return 6 * 7', input: '{}' })
  t.equal(js.result?.data, '42')
  for (const runtime of ['python', 'node'] as const) {
    const stats = runner.stats().runtimes[runtime] as unknown as Record<string, number>
    t.ok((stats.forks ?? 0) > 0 && stats.bornInCgroup === stats.forks, `${runtime}: ${stats.bornInCgroup} of ${stats.forks} sandboxes born in their cgroup`)
  }
  t.same(cmdlines(join(parent, 'zygotes', 'cgroup.procs')).map((c) => /\/hearth\/zygote\.(py|mjs)/.exec(c)?.[1]).sort(), ['mjs', 'py'], 'the zygotes live in <parent>/zygotes')
  // A ready sandbox of the pool: its pid 1, which the daemon never moves, sits in its cgroup with its program.
  let held: string[] = []
  await waitFor(() => {
    const dir = readdirSync(parent).find((d) => d.startsWith('python-'))
    held = dir === undefined ? [] : cmdlines(join(parent, dir, 'cgroup.procs'))
    return held.length === 2
  }, 10_000, 'a ready python sandbox')
  t.match(held.sort(), [/\/hearth\/zygote\.py /, /^hearth-reaper /], 'the program and the reaper, both born there')
  t.same(warnings, [], 'no zygote fell back to the daemon placing its sandboxes')
})
