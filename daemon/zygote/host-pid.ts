// Host pids of processes in a zygote's pid namespaces, from /proc.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs'

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

export function children (hostPid: number): number[] {
  try {
    return readFileSync(`/proc/${hostPid}/task/${hostPid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number)
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
    level = level.flatMap(children)
    for (const pid of level) {
      const ns = nsPids(pid)
      if (ns !== null && ns.length >= 2 && ns[ns.length - 1] === innerPid) return pid
    }
  }
  return null
}

/**
 * A process's children, its /proc file opened once and re-read (pread) each
 * time: a zygote's, read at each fork (an open of a /proc file costs more
 * than its read).
 */
export class Children {
  private fd: number | null = null
  private readonly buf = Buffer.allocUnsafe(4096)

  constructor (private readonly pid: number) {}

  list (): number[] {
    try {
      this.fd ??= openSync(`/proc/${this.pid}/task/${this.pid}/children`, 'r')
      const n = readSync(this.fd, this.buf, 0, this.buf.length, 0)
      if (n === this.buf.length) return children(this.pid) // more than fits: read whole
      return this.buf.toString('latin1', 0, n).trim().split(/\s+/).filter(Boolean).map(Number)
    } catch {
      return []
    }
  }

  close (): void {
    if (this.fd !== null) closeSync(this.fd)
    this.fd = null
  }
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
