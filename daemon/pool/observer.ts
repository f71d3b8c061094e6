// What the runner tells whoever watches it (the metrics): counts and durations
// by language and kind, never anything of a call's code, path or data.
import type { Language } from '../config.js'

/** Why a sandbox was killed. `used`: a fresh sandbox after its one call (isolation contract). */
export type DestroyReason = 'used' | 'timeout' | 'memory' | 'pids' | 'crash' | 'retired' | 'idle' | 'evicted' | 'error' | 'shutdown'

export type LimitName = 'memory' | 'pids' | 'timeout' | 'result' | 'logs'

export interface RunObserver {
  /** a call ended: `outcome` is 'ok' or its error code */
  call: (language: Language, outcome: string, start: 'warm' | 'fresh', seconds: number) => void
  /** a sandbox was started (`ok`) or failed to start, forked from a zygote or spawned */
  started: (language: Language, mode: 'fork' | 'spawn', seconds: number, ok: boolean) => void
  destroyed: (language: Language, reason: DestroyReason) => void
  /** how long a call waited for its sandbox */
  waited: (language: Language, seconds: number) => void
  breach: (language: Language, limit: LimitName) => void
}

export const NO_OBSERVER: RunObserver = { call () {}, started () {}, destroyed () {}, waited () {}, breach () {} }
