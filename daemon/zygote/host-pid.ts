// Host pids of processes in a zygote's pid namespaces, from /proc.
import { readFileSync } from 'node:fs'
import type { KeptFiles } from '../kept-files.js'

/** NSpid: the process's pid in each pid namespace, from the reader's own down to its innermost. */
export function nsPids (hostPid: number): number[] | null {
  try {
    const status = readFileSync(`/proc/${hostPid}/status`, 'latin1')
    const m = /^NSpid:\s+(.*)$/m.exec(status)
    return m === null ? null : (m[1] as string).trim().split(/\s+/).map(Number)
  } catch {
    return null
  }
}

/** A process's children; through `files` when given (a zygote's, read at each fork, stays open). */
export function children (hostPid: number, files?: KeptFiles): number[] {
  const file = `/proc/${hostPid}/task/${hostPid}/children`
  try {
    return (files?.read(file) ?? readFileSync(file, 'latin1')).trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * The process under `root` (bwrap, depth ≤ 3) that is `innerPid` in its
 * innermost pid namespace: the zygote, which reports its own pid.
 */
export function findDescendant (root: number, innerPid: number): number | null {
  let level = [root]
  for (let depth = 0; depth < 3 && level.length > 0; depth++) {
    level = level.flatMap((pid) => children(pid))
    for (const pid of level) {
      const ns = nsPids(pid)
      if (ns !== null && ns.length >= 2 && ns[ns.length - 1] === innerPid) return pid
    }
  }
  return null
}

/**
 * The zygote's child that is `pidInZygote` in the zygote's namespace (it is pid
 * 1 of its own, one level further in), among its children `list` (newest last).
 */
export function findChild (list: readonly number[], pidInZygote: number): number | null {
  for (let i = list.length - 1; i >= 0; i--) {
    const ns = nsPids(list[i] as number)
    if (ns !== null && ns.length >= 2 && ns[ns.length - 2] === pidInZygote) return list[i] as number
  }
  return null
}
