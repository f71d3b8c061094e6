// Pipes for a spawned sandbox's fds 1 and 2. Node's spawn connects a child's
// stdio 'pipe' with unix socket pairs, and a socket's /proc/self/fd link
// cannot be opened (ENXIO): code writing to /dev/stdout or /dev/stderr (shell
// scripts, `open('/dev/stdout', 'w')`) failed. Node makes no pipes; the
// zygote's C core, as the addon the node zygote loads, does
// (runtimes/zygote/node/addon.c). A forked sandbox's are named pipes
// (daemon/zygote/rendezvous.ts).
import { closeSync, fchownSync } from 'node:fs'
import { createRequire } from 'node:module'

/** A new pipe, both ends close-on-exec: [read end, write end]. */
export type MakePipe = () => [number, number]

/**
 * The addon's pipe(), or null when the addon at `addon` cannot be loaded (not
 * built): spawned sandboxes then keep socket pairs. `ownerUid`: the host uid
 * of the sandboxes, when the daemon is root: a pipe is its maker's, mode
 * 0600, and opening /dev/stdout opens the pipe itself (Permission denied to
 * the sandbox uid when root's).
 */
export function pipeMaker (addon: string | null, ownerUid: number | null): MakePipe | null {
  if (addon === null) return null
  let pipe: MakePipe
  try {
    const loaded = createRequire(import.meta.url)(addon) as { pipe?: MakePipe }
    if (typeof loaded.pipe !== 'function') return null
    pipe = loaded.pipe
  } catch {
    return null
  }
  if (ownerUid === null) return pipe
  return () => {
    const fds = pipe()
    try {
      fchownSync(fds[1], ownerUid, ownerUid)
    } catch (err) {
      for (const fd of fds) closeSync(fd)
      throw err
    }
    return fds
  }
}
