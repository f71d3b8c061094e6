// Picks the resource-limit backend at start-up: cgroup v2, then v1, then rlimits.
import { LANGUAGES, type Config, type LimitsBackendName } from '../../config.js'
import { cgroupV1 } from './cgroup-v1.js'
import { cgroupV2 } from './cgroup-v2.js'
import { noLimits, rlimitBackend } from './rlimit.js'
import type { Limits, LimitsBackend } from './types.js'

export type { Breach, Limits, LimitsBackend, SandboxLimits } from './types.js'

/** What a configuration asks of each sandbox; `sandboxes`: every language pool full, plus every warm set. */
export function limitsOf (c: Config): Limits {
  return { memoryBytes: c.maxMemoryBytes, cpus: c.maxCpus, pids: c.maxPids, sandboxes: c.poolMax * LANGUAGES.length + c.warmMaxTotal }
}

export async function chooseLimitsBackend (wanted: LimitsBackendName, limits: Limits, cgroupName: string): Promise<LimitsBackend> {
  if (wanted === 'none') return noLimits(limits)
  if (wanted === 'rlimit') return rlimitBackend(limits)
  if (wanted === 'cgroup2' || wanted === 'auto') {
    const backend = await cgroupV2(limits, cgroupName)
    if (backend !== null) return backend
    if (wanted === 'cgroup2') throw new Error('LIMITS_BACKEND=cgroup2, but no delegated cgroup v2 subtree with the memory, pids and cpu controllers is writable')
  }
  if (wanted === 'cgroup1' || wanted === 'auto') {
    const backend = await cgroupV1(limits, cgroupName)
    if (backend !== null) return backend
    if (wanted === 'cgroup1') throw new Error('LIMITS_BACKEND=cgroup1, but the memory, pids and cpu cgroup v1 hierarchies are not writable')
  }
  return rlimitBackend(limits)
}
