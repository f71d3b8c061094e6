// What every resource-limit backend offers a sandbox.
import type { Rlimits } from '../../protocol.js'
import type { SpareCounts } from './spares.js'

export interface Limits {
  readonly memoryBytes: number
  readonly cpus: number
  readonly pids: number
  /**
   * The most sandboxes alive at once. Only the rlimit backend uses it: its
   * RLIMIT_NPROC counts every task (threads included) of the sandbox host uid,
   * all sandboxes together, so its ceiling is pids × this.
   */
  readonly sandboxes?: number
}

export type Breach = 'memory' | 'pids'

/** One sandbox's share of a backend: made before spawn, destroyed after exit. */
export interface SandboxLimits {
  /**
   * Prefix for the sandbox's argv. The prefix puts the process into its limits
   * before it execs anything else, so no child can start outside them.
   */
  readonly prefix: readonly string[]
  /**
   * For a sandbox forked by a zygote, which no prefix can wrap: puts the running
   * process (host pid) into the sandbox's cgroups. It must not fork until then.
   */
  place?: (hostPid: number) => Promise<void>
  /** For a forked sandbox under the rlimit backend: the limits it sets on itself. */
  readonly rlimits?: Rlimits
  /** ForkIntoCgroups enabled: its cgroup's directory under the parent (in each hierarchy, v1), for a zygote to fork it into */
  readonly cgroup?: string
  /** The limit the sandbox ran into, if any (read from the kernel's own counters); 'unreadable' when they cannot be read. */
  breach: () => Breach | 'unreadable' | null
  /** Kills whatever is left inside (the whole cgroup) and removes it. */
  destroy: () => Promise<void>
}

/** Why a cgroup backend cannot be used here, in words an operator can act on. */
export class Unavailable {
  constructor (readonly reason: string) {}
}

/** Why a setup step failed: the file and the errno, not the whole stack. */
export function failed (what: string, err: unknown): Unavailable {
  const e = err as NodeJS.ErrnoException
  return new Unavailable(`${what}: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' ').trim())
}

export interface LimitsBackend {
  readonly name: 'cgroup2' | 'cgroup1' | 'rlimit' | 'none'
  /** Where the sandboxes' cgroups live, or what is enforced. */
  readonly detail: string
  readonly limits: Limits
  /** auto: why the backends tried before this one could not be used */
  readonly passedOver?: readonly string[]
  /** `own`: limits of this one instead of the backend's (a build sandbox: daemon/packages) */
  create: (sandboxId: string, own?: Limits) => Promise<SandboxLimits>
  /** Removes the sandbox cgroups of daemons that died without cleaning up; how many. */
  removeStale: () => Promise<number>
  /** Removes the backend's parent cgroup at shutdown (best effort). */
  close: () => Promise<void>
  /** cgroup backends: how zygotes start each sandbox in its cgroup, which the daemon then need not place it in */
  readonly forkInto?: ForkIntoCgroups
  /** cgroup backends: sandbox cgroups made, handed on from an ended sandbox, and kept now (spares.ts) */
  cgroups?: () => SpareCounts
}

/** What zygotes are given of the sandboxes' cgroups, at /run/hearth-cgroup (zygote/argv.ts). */
export type CgroupsView =
  /**
   * cgroup v2: the sandboxes' parent; each sandbox's init is cloned into its
   * cgroup (fork-into.ts), or, where that fails (no clone3: a zygote on an
   * architecture other than x86-64 and arm64, a container's seccomp profile)
   * or `clone` is false (tests), each program joins it, as on v1
   */
  | { readonly version: 2, readonly parent: string, readonly clone?: boolean }
  /** cgroup v1: the sandboxes' parent in each hierarchy, by the hierarchy's name, writable; each program joins its cgroups itself (join-v1.ts) */
  | { readonly version: 1, readonly parents: Readonly<Record<string, string>> }

/**
 * How zygotes start each sandbox in its cgroups. v2: a clone into a cgroup is
 * checked as a write of the new pid into its cgroup.procs by the zygote (its
 * uid, its cgroup namespace): the zygote must be allowed to write the sandbox
 * cgroup's cgroup.procs and that of the common ancestor of its own cgroup and
 * the sandbox's. v1: each forked program writes itself into the cgroup.procs
 * of its cgroup in each hierarchy, which must be its uid's to write.
 */
export interface ForkIntoCgroups {
  readonly view: CgroupsView
  /** Makes the cgroups writable for zygotes of host uid `uid` (null: the daemon's own); from then on each sandbox's limits name its cgroup. */
  enable: (uid: number | null) => Promise<void>
  /** Moves a zygote (host pid) into a cgroup under the parent, so that the parent is the common ancestor (v2; nothing on v1). */
  adopt: (hostPid: number) => Promise<void>
}
