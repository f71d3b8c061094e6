// cgroup v1: each forked program joins its sandbox's cgroups itself, writing
// "0" (itself) into their cgroup.procs (runtimes/zygote/isolate.c,
// join_cgroups), before any user code. Otherwise the daemon finds the
// program's host pid in /proc and writes it into the cgroup.procs of three
// hierarchies on the thread pool: under run-now load that was a quarter of
// the daemon's CPU per call (bench/results/ab/issue-9-v1-join.txt).
//
// v1 lets a process move a task into a cgroup when it may write that
// cgroup.procs file and the task's uid is its own (kernel/cgroup/cgroup-v1.c:
// no common-ancestor rule, unlike v2). So each sandbox cgroup's cgroup.procs
// is given to the zygotes' uid, and the sandboxes' parent in each hierarchy
// is bound into the zygotes, writable (zygote/argv.ts); each child covers
// them before it runs anything else. The parents and the sandboxes'
// directories are searchable (0711, not listable; cgroupfs.ts, giveToZygotes):
// under systemd's UMask=0077 they are made 0700, and the zygotes could not
// reach a cgroup.procs (EACCES, seen in the nspawn test). What that gives another process of
// SANDBOX_UID on the host, if there is one: moving processes of that uid
// (its own, or sandboxes') into a sandbox's cgroup, to be killed with it;
// it could signal them anyway. A SANDBOX_UID of hearth's own leaves none.
import { chmod } from 'node:fs/promises'
import { giveToZygotes } from './cgroupfs.js'
import type { CgroupsView, ForkIntoCgroups } from './types.js'

export class CgroupsToJoin implements ForkIntoCgroups {
  readonly view: CgroupsView
  private readonly parents: readonly string[]
  /** the zygotes' host uid (null: the daemon's own); undefined until enable() */
  private owner: number | null | undefined

  /** `parents`: the sandboxes' parent cgroup in each hierarchy, by the hierarchy's name */
  constructor (parents: ReadonlyMap<string, string>) {
    this.view = { version: 1, parents: Object.fromEntries(parents) }
    this.parents = [...parents.values()]
  }

  async enable (uid: number | null): Promise<void> {
    await Promise.all(this.parents.map(async (dir) => await chmod(dir, 0o711)))
    this.owner = uid
  }

  /** v1 has no common-ancestor rule: a zygote stays where it is. */
  async adopt (): Promise<void> {}

  /** A sandbox's cgroups (`name` in each hierarchy; `procs`, their cgroup.procs files) made joinable (giveToZygotes): what its limits add. */
  sandbox (name: string, procs: readonly string[]): { cgroup?: string } {
    if (this.owner === undefined) return {}
    giveToZygotes(procs, this.owner)
    return { cgroup: name }
  }
}
