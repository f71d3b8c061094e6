// Picks the resource-limit backend at start-up: cgroup v2, then v1, then rlimits.
import { LANGUAGES, type Config, type LimitsBackendName } from '../../config.js'
import { CannotStart } from '../../errors.js'
import { cgroupV1 } from './cgroup-v1.js'
import { cgroupV2 } from './cgroup-v2.js'
import { noLimits, rlimitBackend } from './rlimit.js'
import { Unavailable, type Limits, type LimitsBackend } from './types.js'

export type { Breach, CgroupsView, ForkIntoCgroups, Limits, LimitsBackend, SandboxLimits } from './types.js'

/** What a configuration asks of each sandbox; `sandboxes`: every language pool full, plus every warm set. */
export function limitsOf (c: Config): Limits {
  return { memoryBytes: c.maxMemoryBytes, cpus: c.maxCpus, pids: c.maxPids, sandboxes: c.poolMax * LANGUAGES.length + c.warmMaxTotal }
}

/**
 * The backend LIMITS_BACKEND names, or under `auto` the first that works here.
 * A named backend that cannot work is an error saying why; under `auto` the
 * reasons of those passed over travel with the one chosen (app.ts logs them).
 */
export async function chooseLimitsBackend (wanted: LimitsBackendName, limits: Limits, cgroupName: string): Promise<LimitsBackend> {
  if (wanted === 'none') return noLimits(limits)
  if (wanted === 'rlimit') return rlimitBackend(limits)
  const passedOver: string[] = []
  for (const [name, make] of [['cgroup2', cgroupV2], ['cgroup1', cgroupV1]] as const) {
    if (wanted !== name && wanted !== 'auto') continue
    const backend = await make(limits, cgroupName)
    if (!(backend instanceof Unavailable)) return { ...backend, passedOver }
    if (wanted === name) throw new CannotStart(`LIMITS_BACKEND=${name}, but ${backend.reason}`)
    passedOver.push(backend.reason)
  }
  return { ...rlimitBackend(limits), passedOver }
}
