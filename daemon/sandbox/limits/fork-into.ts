// cgroup v2: zygotes fork each sandbox's init straight into its cgroup
// (clone3 CLONE_INTO_CGROUP) instead of the daemon moving the sandbox there.
// The kernel checks such a clone as a write of the new pid into the sandbox
// cgroup's cgroup.procs by the zygote (its uid), and into that of the common
// ancestor of the zygote's cgroup and the sandbox's.
//
// Zygotes live in <parent>/zygotes, so that <parent> (ours) is that common
// ancestor. Its cgroup.procs and each sandbox's are the sandbox uid's: nothing
// else of that uid can reach them (sandboxes see no cgroup file system; a
// process elsewhere on the host has no common ancestor with them that it may
// write). <parent> is searchable (0711, not listable), for a zygote to open a
// sandbox's directory by name (under systemd's UMask=0077 it is made 0700:
// EACCES, measured in the VM test), and so is each sandbox's, for a child to
// open its cgroup.procs where a zygote cannot clone (no clone3: its children
// join their cgroup, as on v1).
import { chmod, chown, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { giveToZygotes, placePid, removeCgroup } from './cgroupfs.js'
import type { CgroupsView, ForkIntoCgroups } from './types.js'

export class CgroupsForZygotes implements ForkIntoCgroups {
  readonly parent: string
  readonly view: CgroupsView
  private readonly zygotes: string
  /** the zygotes' host uid (null: the daemon's own); undefined until enable() */
  private owner: number | null | undefined

  /** `clone` false: the zygotes do not clone into cgroups, their children join them (tests: as where clone3 is refused) */
  constructor (parent: string, clone = true) {
    this.parent = parent
    this.view = { version: 2, parent, ...(clone ? {} : { clone }) }
    this.zygotes = join(parent, 'zygotes')
  }

  async enable (uid: number | null): Promise<void> {
    await mkdir(this.zygotes, { recursive: true })
    await chmod(this.parent, 0o711)
    if (uid !== null) await chown(join(this.parent, 'cgroup.procs'), uid, -1)
    this.owner = uid
  }

  async adopt (hostPid: number): Promise<void> {
    await placePid([join(this.zygotes, 'cgroup.procs')], hostPid)
  }

  /** A new sandbox cgroup `<parent>/<id>`, made ready for a zygote to fork into (synchronously: cgroupfs.ts says why); what its limits add. */
  sandbox (id: string): { cgroup?: string } {
    if (this.owner === undefined) return {}
    giveToZygotes([join(this.parent, id, 'cgroup.procs')], this.owner)
    return { cgroup: id }
  }

  async close (): Promise<void> {
    if (this.owner !== undefined) await removeCgroup(this.zygotes, join(this.zygotes, 'cgroup.procs'), 3)
  }
}
