// cgroup v2: zygotes fork each sandbox's init straight into its cgroup
// (clone3 CLONE_INTO_CGROUP), so the daemon moves nothing. The production
// path (systemd, a delegated subtree with controllers) is tested in the VM
// guests (scripts/vm/guest-test.sh); here the clone itself, on this host's
// cgroup v2 hierarchy (which may hold no controllers: a clone into a cgroup
// needs none), beside the real limits backend.
import { mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { CgroupsForZygotes } from '../daemon/sandbox/limits/fork-into.js'
import { mounts, removeCgroup } from '../daemon/sandbox/limits/cgroupfs.js'
import type { LimitsBackend } from '../daemon/sandbox/limits/types.js'
import type { Env } from '../daemon/config.js'
import type { Runner } from '../daemon/pool/runner.js'
import { call, startRunner, waitFor } from './helpers/runner.js'
import { pythonRuntime } from './helpers/zygotes.js'

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

const skip = v2 === undefined ? 'no cgroup2 file system here' : false

/**
 * A runner whose zygotes fork into cgroups under a new directory of this
 * host's cgroup v2 hierarchy, beside the real limits backend's; `clone`
 * false: their children join them instead, as where clone3 is refused;
 * `wrapZygoteArgv`: the zygotes' command line, changed.
 */
async function bornInCgroups (t: Test, env: Env, o: { clone?: boolean, wrapZygoteArgv?: (argv: string[]) => string[] } = {}): Promise<{ runner: Runner, warnings: Array<Record<string, unknown>>, parent: string }> {
  const parent = join((v2 as { path: string }).path, `hearth-test-clone-${process.pid}-${++made}`)
  mkdirSync(parent)
  const forkInto = new CgroupsForZygotes(parent, o.clone)
  const dirs = new Set<string>()
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
  const { runner, warnings } = await startRunner(t, env, { wrapLimits, wrapZygoteArgv: o.wrapZygoteArgv })
  t.teardown(async () => {
    for (const dir of dirs) await removeCgroup(dir)
    await forkInto.close()
    rmdirSync(parent)
  })
  return { runner, warnings, parent }
}
let made = 0

/**
 * What sits in the cgroup of a ready sandbox of `language` (a pool's), once it
 * holds `count` processes and its init has executed the reaper (one caught
 * executing it, read as "", failed a fresh-clone CI run).
 */
async function heldBy (parent: string, language: string, count: number): Promise<string[]> {
  let held: string[] = []
  await waitFor(() => {
    // Empty ones are spares (spares.ts), kept from ended sandboxes.
    held = readdirSync(parent).filter((d) => d.startsWith(`${language}-`)).map((d) => cmdlines(join(parent, d, 'cgroup.procs'))).find((h) => h.length === count && h.some((c) => c.startsWith('hearth-reaper '))) ?? []
    return held.length === count
  }, 10_000, `a ready ${language} sandbox`)
  return held.sort()
}

/** After a javascript call: every python and node sandbox so far entered its cgroup without the daemon (`how`: born in it, or joined it). */
async function everyOneIn (t: Test, runner: Runner, how: string): Promise<void> {
  const js = await call(runner, { language: 'javascript', code: 'return 6 * 7', input: '{}' })
  t.equal(js.result?.data, '42')
  for (const runtime of ['python', 'node'] as const) {
    const stats = runner.stats().runtimes[runtime] as unknown as Record<string, number>
    t.ok((stats.forks ?? 0) > 0 && stats.bornInCgroup === stats.forks, `${runtime}: ${stats.bornInCgroup} of ${stats.forks} sandboxes ${how} their cgroup`)
  }
}

t.test('a zygote forks each sandbox\'s init into its cgroup: nothing is moved, pid 1 included', { skip }, async (t) => {
  const { runner, warnings, parent } = await bornInCgroups(t, { POOL_MIN: '1' })
  const py = await call(runner, { language: 'python', code: 'return [l for l in open("/proc/self/cgroup").read().splitlines() if l.startswith("0::")]', input: '{}' })
  t.equal(py.result?.data, '["0::/"]', 'its cgroup v2 directory is the root of what it sees')
  await everyOneIn(t, runner, 'born in')
  t.same(cmdlines(join(parent, 'zygotes', 'cgroup.procs')).map((c) => /\/hearth\/zygote\.(py|mjs)/.exec(c)?.[1]).sort(), ['mjs', 'py'], 'the zygotes live in <parent>/zygotes')
  // A ready sandbox of the pool: its pid 1, which the daemon never moves, sits in its cgroup with its program.
  t.match(await heldBy(parent, 'python', 2), [/\/hearth\/zygote\.py /, /^hearth-reaper /], 'the program and the reaper, both born there')
  t.same(warnings, [], 'no zygote fell back to the daemon placing its sandboxes')
})

t.test('ZYGOTE_NODE=exec: the init of an executed node is born in its cgroup too, and says so itself', { skip }, async (t) => {
  const { runner, warnings, parent } = await bornInCgroups(t, { POOL_MIN: '1', ZYGOTE_NODE: 'exec' })
  const js = await call(runner, { language: 'javascript', code: 'return 6 * 7', input: '{}' })
  t.equal(js.result?.data, '42')
  const node = runner.stats().runtimes.node as unknown as Record<string, number | string>
  t.match(node, { start: 'exec' })
  t.ok((node.forks as number) > 0 && node.bornInCgroup === node.forks, `${node.bornInCgroup} of ${node.forks} node sandboxes born in their cgroup`)
  t.match(await heldBy(parent, 'javascript', 2), [/\/hearth\/bootstrap\.mjs/, /^hearth-reaper /], 'the executed node and the reaper')
  t.same(warnings, [], 'no zygote fell back to the daemon placing its sandboxes')
})

t.test('where a zygote cannot clone into cgroups (v2), each program joins its own: the daemon moves none', { skip }, async (t) => {
  // As under systemd (UMask=0077): the sandboxes' directories are made 0700 unless the daemon says otherwise.
  const umask = process.umask(0o077)
  t.teardown(() => { process.umask(umask) })
  const { runner, warnings, parent } = await bornInCgroups(t, { POOL_MIN: '1' }, { clone: false })
  const py = await call(runner, { language: 'python', code: 'import os\nreturn [[l for l in open("/proc/self/cgroup").read().splitlines() if l.startswith("0::")], os.listdir("/run/hearth-cgroup")]', input: '{}' })
  t.equal(py.result?.data, '[["0::/"],[]]', 'its cgroup is the root of what it sees; the parent is covered')
  await everyOneIn(t, runner, 'joined')
  // A ready sandbox of the pool: its program alone in its cgroup (pid 1, the reaper, stays in the zygote's).
  let held: string[] = []
  await waitFor(() => {
    held = readdirSync(parent).filter((d) => d.startsWith('python-')).map((d) => cmdlines(join(parent, d, 'cgroup.procs'))).find((h) => h.length > 0) ?? []
    return held.length > 0
  }, 10_000, 'a ready python sandbox in its cgroup')
  t.match(held, [/\/hearth\/zygote\.py /], 'the program, which joined it')
  t.same(warnings, [], 'no zygote fell back to the daemon placing its sandboxes')
})

/**
 * Runs a command under a seccomp filter that answers clone3 with ENOSYS, as
 * a container's default profile does (and as where a zygote has no clone3
 * trampoline: clone3.c), then executes the rest of its arguments.
 */
const NO_CLONE3 = `
import ctypes, os, struct, sys
prog = [(0x20, 0, 0, 4), (0x15, 0, 3, 0xc000003e), (0x20, 0, 0, 0), (0x15, 0, 1, 435), (0x06, 0, 0, 0x00050026), (0x06, 0, 0, 0x7fff0000)]
code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(Prog(len(prog), ctypes.addressof(code))), 0, 0) != 0:
    sys.exit("seccomp: %s" % os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])
`

t.test('a zygote whose clone into a cgroup fails (ENOSYS) says so once; its later children join their cgroup', { skip: skip || (process.arch === 'x64' ? false : 'the filter is x86-64\'s') }, async (t) => {
  const { runner, warnings } = await bornInCgroups(t, { POOL_MIN: '0' }, { wrapZygoteArgv: (argv) => ['/usr/bin/python3', '-c', NO_CLONE3, ...argv] })
  for (let i = 0; i < 3; i++) t.equal((await call(runner, { language: 'python', code: `return ${i}`, input: '{}' })).result?.data, String(i))
  const python = pythonRuntime(runner)
  t.equal(python.forks, 3)
  t.equal(python.bornInCgroup, 2, 'the first placed by the daemon, the next two joined their cgroup')
  t.ok(warnings.some((w) => /clone3 into a sandbox cgroup: Function not implemented; the next children join their cgroups instead/.test(String(w.line))), 'the zygote said so')
})

t.test('a zygote that replaces a worn one forks into the cgroups too', { skip }, async (t) => {
  const { runner, warnings, parent } = await bornInCgroups(t, { ZYGOTE_MAX_FORKS: '2' })
  for (let i = 0; i < 5; i++) {
    const r = await call(runner, { language: 'python', code: `return ${i}`, input: '{}' })
    t.equal(r.result?.data, String(i))
  }
  const python = pythonRuntime(runner)
  t.ok((python.started ?? 0) >= 3, `${python.started} python zygotes started`)
  t.equal(python.bornInCgroup, python.forks, `${python.bornInCgroup} of ${python.forks} born in their cgroup`)
  await waitFor(() => cmdlines(join(parent, 'zygotes', 'cgroup.procs')).filter((c) => c.includes('/hearth/zygote.py')).length >= 1, 10_000, 'the current zygote in <parent>/zygotes')
  t.same(warnings, [], 'no zygote fell back to the daemon placing its sandboxes')
})
