// The zygotes of this test process, as the host sees them, and a runner's view of the python one.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import type { Runner } from '../../daemon/pool/runner.js'

/** /readyz's `runtimes.python` of `runner`. */
export function pythonRuntime (runner: Runner): Record<string, any> {
  return runner.stats().runtimes.python as Record<string, any>
}

function childrenOf (pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number))
  } catch {
    return []
  }
}

/** Host pids of this test process's descendants whose command line runs /hearth/zygote.py (bwrap's, the zygotes', their programs'). */
function zygotePids (): number[] {
  const all: number[] = []
  for (let level = childrenOf(process.pid); level.length > 0; level = level.flatMap(childrenOf)) all.push(...level)
  return all.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('/hearth/zygote.py')
    } catch {
      return false
    }
  })
}

const comm = (pid: number): string => readFileSync(`/proc/${pid}/comm`, 'latin1').trim()
const parentOf = (pid: number): number => Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1])

/** Host pids of this test process's python zygotes: the python3 right under bwrap (its sandboxes' programs run zygote.py too, under their reaper). */
export function pythonZygotes (): number[] {
  return zygotePids().filter((pid) => comm(pid) !== 'bwrap' && comm(parentOf(pid)) === 'bwrap')
}

/** Host pids of the python programs of this test process's forked sandboxes: python3 running zygote.py under their sandbox's init, not under bwrap. */
export function pythonPrograms (): number[] {
  return zygotePids().filter((pid) => readlinkSync(`/proc/${pid}/exe`).includes('python3') && comm(parentOf(pid)) !== 'bwrap')
}
