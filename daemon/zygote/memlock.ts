// How much a zygote may pin (runtimes/zygote/pin.c): its RLIMIT_MEMLOCK.
import { accessSync, constants, readFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'

/**
 * The pins of a zygote (~1.2 MB for python's, ~1.3 MB for node's) count
 * against its RLIMIT_MEMLOCK, summed over every process of its uid on the
 * host: a retiring zygote and its successor, other daemons' zygotes of the
 * same SANDBOX_UID. 64 MB leaves room for all of those.
 */
export const ZYGOTE_MEMLOCK_BYTES = 64 << 20

const CAP_SYS_RESOURCE = 24

/** Whether this process may raise a child's RLIMIT_MEMLOCK past its own hard limit (CAP_SYS_RESOURCE; root under systemd has it, some containers' root not). */
export function mayRaiseMemlock (status = '/proc/self/status'): boolean {
  try {
    const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(status, 'latin1'))?.[1]
    return effective !== undefined && (BigInt(`0x${effective}`) >> BigInt(CAP_SYS_RESOURCE) & 1n) === 1n
  } catch {
    return false
  }
}

/** Whether `command` is an executable file in a directory of PATH. */
export function onPath (command: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK)
      return dir !== ''
    } catch {
      return false
    }
  })
}

/**
 * RLIMIT_MEMLOCK for the zygotes, set by prlimit(1) (util-linux): raised
 * where this process may; otherwise, or without prlimit, theirs is the
 * daemon's own (8 MB by default: past it pins fail, and children prefault).
 */
export function zygoteMemlock (): number | undefined {
  return mayRaiseMemlock() && onPath('prlimit') ? ZYGOTE_MEMLOCK_BYTES : undefined
}
