// Spare sandbox cgroups. A sandbox's cgroup, empty after its end, is kept for
// the next sandbox with the backend's own limits: that one then costs no mkdir
// and no limit writes, and its end no rmdir. On cgroup v1 (a cgroup in each of
// three hierarchies) those were ~20 % of the daemon's CPU under run-now load,
// plus the kernel's work of bringing cgroups up and down; kept, run-now Python
// went from 222 to 267 req/s at 8 connections on the 2-core development VM
// (bench/results/ab/issue-9-spare-cgroups.txt).
//
// A cgroup is kept only when nothing is left in it, its memory charge is
// (almost) nil, and its counters could be re-based (Counters.rebase: the next
// sandbox's breaches count from there); its limits stay as they were written.
// At most SPARES_MAX are kept; the rest, and all of them at close(), are removed.
import type { Counters } from './cgroupfs.js'
import type { SandboxLimits } from './types.js'

export const SPARES_MAX = 64
/**
 * A cgroup is kept while the memory still charged to it after its sandbox's
 * end is at most this share of its limit: page cache and kernel objects, which
 * the kernel reclaims when the next sandbox needs the room (measured: 0-150 KB
 * after a run-now call, 1.7 MB after 30 forks).
 */
export const SPARE_CHARGE_SHARE = 1 / 16

/** For /readyz: sandbox cgroups made, handed on, and kept now. */
export interface SpareCounts {
  readonly made: number
  readonly reused: number
  readonly spare: number
}

/** What a backend's sandbox cgroup offers for the checks before it is kept. */
export interface SpareCgroup {
  readonly counters: Counters
  /** pids.current: every task still charged, zombies included */
  readonly pidsCurrent: string
  /** memory.current (v2), memory.usage_in_bytes (v1) */
  readonly memoryCharge: string
}

export class Spares<T extends SpareCgroup> {
  private readonly kept: T[] = []
  private made = 0
  private reused = 0

  /** `memoryBytes`: the memory limit the cgroups were made with */
  constructor (private readonly memoryBytes: number) {}

  /** A kept cgroup, or undefined: the caller makes a new one. */
  take (): T | undefined {
    const cgroup = this.kept.pop()
    if (cgroup === undefined) this.made++
    else this.reused++
    return cgroup
  }

  /**
   * Whether `cgroup`, at its sandbox's end, was kept: `empty` (its
   * cgroup.procs listed nobody), no task charged to it, at most
   * SPARE_CHARGE_SHARE of its memory limit charged, its counters re-based,
   * and room for it.
   */
  keep (cgroup: T, empty: boolean): boolean {
    if (!empty || this.kept.length >= SPARES_MAX) return false
    try {
      if (cgroup.counters.number(cgroup.pidsCurrent) !== 0) return false
      if (!(cgroup.counters.number(cgroup.memoryCharge) <= this.memoryBytes * SPARE_CHARGE_SHARE)) return false
    } catch {
      return false
    }
    if (!cgroup.counters.rebase()) return false
    this.kept.push(cgroup)
    return true
  }

  /**
   * A sandbox's `breach` and `destroy` on `cgroup`. `shared`: the cgroup has
   * the backend's limits (it may be kept); `end` kills what is left in it
   * and says whether it was empty; `remove` removes it. After the end the
   * counters may be another sandbox's: breach() says 'unreadable'. destroy()
   * acts once: a second keep would hand one cgroup to two sandboxes.
   */
  lend (cgroup: T, shared: boolean, end: () => boolean, remove: () => Promise<void>): Pick<SandboxLimits, 'breach' | 'destroy'> {
    let ended = false
    return {
      breach: () => ended ? 'unreadable' : cgroup.counters.breach(),
      destroy: async () => {
        if (ended) return
        ended = true
        const empty = end()
        if (shared && this.keep(cgroup, empty)) return
        await remove()
      }
    }
  }

  /** Every kept cgroup, for removal (close); none is kept after. */
  drain (): T[] {
    return this.kept.splice(0)
  }

  counts (): SpareCounts {
    return { made: this.made, reused: this.reused, spare: this.kept.length }
  }
}
