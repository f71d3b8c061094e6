// What /readyz says of a runtime's fresh sandboxes (Forker.stats): how they
// start, and of the current zygote, what its probe learned about its
// children's pages and what it did with them.
import type { Zygote } from './zygote.js'

/** The current zygote's pages, as its ready frame told them (zygote.ts). */
export interface ZygotePages {
  /** pages a forked child copies at once (learned by the zygote's probe; 0 for python: every writable page of the zygote) */
  readonly prefaultPages: number
  /** read-only pages (code) a forked child maps at once, learned by the same probe */
  readonly premapPages: number
  /** pages a forked child copies or maps at once before its first compile of user code (python; learned by the same probe) */
  readonly precompilePages: number
  /** 2 MB pages the zygote's runtime code is on, shared by its children (0: 4 KB pages of its file, hugeTextReason says why) */
  readonly hugeTextPages: number
  readonly hugeTextReason?: string
  /** of prefaultPages, those fork copies itself (pinned by the zygote); 0 with pinReason saying why */
  readonly pinnedPages: number
  readonly pinReason?: string
}

export interface ForkerStats extends Partial<ZygotePages> {
  readonly mode: 'zygote' | 'spawn'
  readonly reason?: string
  /** how a fresh sandbox of this runtime starts in the zygote: forked into its interpreter, or executed */
  readonly start: 'fork' | 'exec'
  /** why it is executed rather than forked from a zygote of its own */
  readonly startReason?: string
  readonly zygotes: number
  readonly retiring: number
  readonly started: number
  /** this runtime's sandboxes started by zygotes so far */
  readonly forks: number
  readonly currentForks: number
  /** this runtime's sandboxes that entered their cgroup without the daemon so far: born there (v2, clone3) or joined it themselves (v1) */
  readonly bornInCgroup?: number
  /** of forks, those asked to read their first call's pages before ready (ZYGOTE_PRETOUCH: spares, no call waiting for them) */
  readonly pretouchedForks: number
}

export function pagesOf (z: Zygote): ZygotePages {
  return {
    prefaultPages: z.prefaultPages,
    premapPages: z.premapPages,
    precompilePages: z.precompilePages,
    hugeTextPages: z.hugeTextPages,
    ...(z.hugeTextReason === null ? {} : { hugeTextReason: z.hugeTextReason }),
    pinnedPages: z.pinnedPages,
    ...(z.pinReason === null ? {} : { pinReason: z.pinReason })
  }
}
