// cgroup v1: one cgroup per sandbox in each of the memory, pids and cpu hierarchies,
// nested under the daemon's own cgroup of that hierarchy (as on the development hosts).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { Counters, joinPrefix, killProcs, mounts, ownCgroups, placePid, probeSandboxCgroups, removeCgroup, removeStaleSandboxes } from './cgroupfs.js'
import { CgroupsToJoin } from './join-v1.js'
import { Spares, type SpareCgroup } from './spares.js'
import { failed, Unavailable, type Limits, type LimitsBackend, type SandboxLimits } from './types.js'

const CONTROLLERS = ['memory', 'pids', 'cpu'] as const
type Controller = typeof CONTROLLERS[number]
const CFS_PERIOD_US = 100_000

/** Each controller's hierarchy, at this process's own cgroup in it. */
export function hierarchyRoots (): Map<Controller, string> | Unavailable {
  const own = ownCgroups()
  const roots = new Map<Controller, string>()
  for (const controller of CONTROLLERS) {
    const mount = mounts().find((m) => m.fstype === 'cgroup' && m.options.includes(controller))
    if (mount === undefined) return new Unavailable(`cgroup1: no ${controller} hierarchy is mounted`)
    if (mount.options.includes('ro')) return new Unavailable(`cgroup1: the ${controller} hierarchy (${mount.path}) is mounted read-only`)
    const key = [...own.keys()].find((k) => k.split(',').includes(controller))
    roots.set(controller, join(mount.path, key === undefined ? '/' : own.get(key) ?? '/'))
  }
  return roots
}

export async function cgroupV1 (limits: Limits, name: string): Promise<LimitsBackend | Unavailable> {
  const roots = hierarchyRoots()
  if (roots instanceof Unavailable) return roots
  const parents = new Map<Controller, string>()
  try {
    for (const [controller, root] of roots) {
      const parent = join(root, name)
      await mkdir(parent, { recursive: true })
      parents.set(controller, parent)
    }
  } catch (err) {
    return failed(`cgroup1: cannot make ${join(roots.get('memory') ?? '', name)} and its siblings`, err)
  }
  const dirOf = (controller: Controller, id: string): string => join(parents.get(controller) as string, id)
  const forkInto = new CgroupsToJoin(parents)

  /** One sandbox's cgroups, one per hierarchy, with their limits written. */
  interface Cgroups extends SpareCgroup { readonly dirs: readonly string[], readonly procs: readonly string[], forkable: { cgroup?: string } }
  const spares = new Spares<Cgroups>(limits.memoryBytes)

  function make (id: string, own: Limits): Cgroups {
    const dirs = CONTROLLERS.map((c) => dirOf(c, id))
    for (const dir of dirs) mkdirSync(dir) // synchronously: cgroupfs.ts says why
    const memory = dirOf('memory', id)
    writeFileSync(join(memory, 'memory.limit_in_bytes'), String(own.memoryBytes))
    // memsw = memory + swap: the same figure means no swap at all.
    if (existsSync(join(memory, 'memory.memsw.limit_in_bytes'))) {
      writeFileSync(join(memory, 'memory.memsw.limit_in_bytes'), String(own.memoryBytes))
    }
    writeFileSync(join(dirOf('pids', id), 'pids.max'), String(own.pids))
    const cpu = dirOf('cpu', id)
    writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(CFS_PERIOD_US))
    writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(own.cpus * CFS_PERIOD_US))))
    const procs = dirs.map((d) => join(d, 'cgroup.procs'))
    const forkable = forkInto.sandbox(id, procs)
    const counters = new Counters([['memory', join(memory, 'memory.oom_control'), 'oom_kill'], ['pids', join(dirOf('pids', id), 'pids.events'), 'max']], procs)
    return { dirs, procs, forkable, counters, pidsCurrent: join(dirOf('pids', id), 'pids.current'), memoryCharge: join(memory, 'memory.usage_in_bytes') }
  }

  async function remove (cgroups: Cgroups): Promise<void> {
    cgroups.counters.close()
    const removed = await Promise.all(cgroups.dirs.map(async (dir) => await removeCgroup(dir)))
    const left = cgroups.dirs.filter((_, i) => !removed[i])
    if (left.length > 0) throw new Error(`cannot remove the sandbox cgroups ${left.join(' ')}`)
  }

  async function create (id: string, own: Limits = limits): Promise<SandboxLimits> {
    // Spares have the backend's limits: a sandbox with limits of its own gets new cgroups.
    const shared = own === limits
    const spare = shared ? spares.take() : undefined
    // One kept from before the zygotes could join cgroups is made ready for it now.
    if (spare !== undefined && spare.forkable.cgroup === undefined) spare.forkable = forkInto.sandbox(basename(spare.dirs[0] as string), spare.procs)
    const cgroups = spare ?? make(id, own)
    return {
      prefix: joinPrefix(cgroups.procs),
      ...cgroups.forkable,
      async place (hostPid) {
        await placePid(cgroups.procs, hostPid, cgroups.counters.files)
      },
      ...spares.lend(cgroups, shared, () => cgroups.procs.map((procs) => killProcs(procs, cgroups.counters.files)).every(Boolean), async () => await remove(cgroups))
    }
  }

  const probe = `probe-${process.pid}-0`
  const refused = await probeSandboxCgroups(() => make(probe, limits), remove, CONTROLLERS.map((c) => dirOf(c, probe)))
  if (refused !== null) return failed(`cgroup1: cannot make a sandbox's cgroups under ${[...parents.values()].join(' ')}`, refused)

  return {
    name: 'cgroup1',
    detail: [...parents.values()].join(' '),
    limits,
    create,
    forkInto,
    cgroups: () => spares.counts(),
    async removeStale () {
      const counts = await Promise.all([...parents.values()].map(async (dir) => await removeStaleSandboxes(dir)))
      return Math.max(0, ...counts)
    },
    async close () {
      await Promise.all(spares.drain().map(remove))
      await Promise.all([...parents.values()].map(async (dir) => await removeCgroup(dir, join(dir, 'cgroup.procs'), 3)))
    }
  }
}
