// cgroup v2: sandboxes in child cgroups of the daemon's own delegated cgroup
// (systemd: the service runs with Delegate=yes). The daemon first moves itself
// into a leaf, because a cgroup with processes cannot hand controllers down.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { Counters, joinPrefix, killProcs, mounts, ownCgroups, placePid, probeSandboxCgroups, removeCgroup, removeStaleSandboxes } from './cgroupfs.js'
import { CgroupsForZygotes } from './fork-into.js'
import { Spares, type SpareCgroup } from './spares.js'
import { failed, Unavailable, type Limits, type LimitsBackend, type SandboxLimits } from './types.js'

const NEEDED = ['memory', 'pids', 'cpu']
const CPU_PERIOD_US = 100_000

async function enableControllers (dir: string): Promise<void> {
  await writeFile(join(dir, 'cgroup.subtree_control'), NEEDED.map((c) => `+${c}`).join(' '))
}

export async function cgroupV2 (limits: Limits, name: string): Promise<LimitsBackend | Unavailable> {
  const mount = mounts().find((m) => m.fstype === 'cgroup2')
  const own = ownCgroups().get('')
  if (mount === undefined) return new Unavailable('cgroup2: no cgroup2 file system is mounted')
  if (own === undefined) return new Unavailable('cgroup2: this process is in no cgroup v2 (/proc/self/cgroup has no 0:: line)')
  const base = join(mount.path, own)
  let available: string[]
  try {
    available = readFileSync(join(base, 'cgroup.controllers'), 'utf8').trim().split(/\s+/)
  } catch (err) {
    return failed(`cgroup2: cannot read ${join(base, 'cgroup.controllers')}`, err)
  }
  const missing = NEEDED.filter((c) => !available.includes(c))
  if (missing.length > 0) {
    return new Unavailable(`cgroup2: ${base} is not delegated the ${missing.join(', ')} controller${missing.length > 1 ? 's' : ''} (systemd: Delegate=yes)`)
  }
  const parent = join(base, name)
  try {
    const procs = (await readFile(join(base, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean)
    if (procs.length > 0) {
      // "no internal processes": move everything in our cgroup (the daemon) to a leaf.
      const leaf = join(base, 'daemon')
      await mkdir(leaf, { recursive: true })
      for (const pid of procs) {
        try { await writeFile(join(leaf, 'cgroup.procs'), pid) } catch {}
      }
    }
    await enableControllers(base)
    await mkdir(parent, { recursive: true })
    await enableControllers(parent)
  } catch (err) {
    return failed(`cgroup2: cannot set up ${parent}`, err)
  }

  const forkInto = new CgroupsForZygotes(parent)

  /** One sandbox's cgroup, with its limits written. */
  interface Cgroup extends SpareCgroup { readonly dir: string, readonly procs: string, forkable: { cgroup?: string } }
  const spares = new Spares<Cgroup>(limits.memoryBytes)

  function make (id: string, own: Limits): Cgroup {
    const dir = join(parent, id)
    mkdirSync(dir) // synchronously: cgroupfs.ts says why
    const forkable = forkInto.sandbox(id)
    writeFileSync(join(dir, 'memory.max'), String(own.memoryBytes))
    if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0')
    writeFileSync(join(dir, 'pids.max'), String(own.pids))
    writeFileSync(join(dir, 'cpu.max'), `${Math.max(1000, Math.round(own.cpus * CPU_PERIOD_US))} ${CPU_PERIOD_US}`)
    const counters = new Counters([['memory', join(dir, 'memory.events'), 'oom_kill'], ['pids', join(dir, 'pids.events'), 'max']], [join(dir, 'cgroup.procs')])
    return { dir, procs: join(dir, 'cgroup.procs'), forkable, counters, pidsCurrent: join(dir, 'pids.current'), memoryCharge: join(dir, 'memory.current') }
  }

  async function remove (cgroup: Cgroup): Promise<void> {
    cgroup.counters.close()
    if (!await removeCgroup(cgroup.dir)) throw new Error(`cannot remove the sandbox cgroup ${cgroup.dir}`)
  }

  async function create (id: string, own: Limits = limits): Promise<SandboxLimits> {
    // Spares have the backend's limits: a sandbox with limits of its own gets a new cgroup.
    const shared = own === limits
    const spare = shared ? spares.take() : undefined
    // One kept from before the zygotes could fork into cgroups is made ready for it now.
    if (spare !== undefined && spare.forkable.cgroup === undefined) spare.forkable = forkInto.sandbox(basename(spare.dir))
    const cgroup = spare ?? make(id, own)
    const end = (): boolean => {
      if (killProcs(cgroup.procs, cgroup.counters.files)) return true
      try {
        writeFileSync(join(cgroup.dir, 'cgroup.kill'), '1') // Linux 5.14+: the whole tree at once
      } catch {}
      return false
    }
    return {
      prefix: joinPrefix([cgroup.procs]),
      ...cgroup.forkable,
      async place (hostPid) {
        await placePid([cgroup.procs], hostPid, cgroup.counters.files)
      },
      ...spares.lend(cgroup, shared, end, async () => await remove(cgroup))
    }
  }

  const probe = `probe-${process.pid}-0`
  const refused = await probeSandboxCgroups(() => make(probe, limits), remove, [join(parent, probe)])
  if (refused !== null) return failed(`cgroup2: cannot make a sandbox's cgroup under ${parent}`, refused)

  return {
    name: 'cgroup2',
    detail: parent,
    limits,
    create,
    removeStale: async () => await removeStaleSandboxes(parent),
    forkInto,
    cgroups: () => spares.counts(),
    async close () {
      await Promise.all(spares.drain().map(remove))
      await forkInto.close()
      await removeCgroup(parent, join(parent, 'cgroup.procs'), 3)
    }
  }
}
