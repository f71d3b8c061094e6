// One daemon per STATE_DIR. Two on one directory each started an embedded
// redis-server on the same socket path and data files (seen: the first's
// server exited as the second's started, was restarted, and both then ran on
// that path), and would share the packages' layers and the C core's build. The lock is an abstract unix socket named after the
// directory's real path: binding it is atomic, and the kernel drops it with
// the process, so a daemon killed with SIGKILL leaves no stale lock behind.
import { createHash } from 'node:crypto'
import { realpathSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { CannotStart } from './errors.js'
import { makeUsableDir } from './usable-dir.js'

export class StateDirInUse extends CannotStart {
  constructor (dir: string) {
    super(`STATE_DIR ${dir} is in use by another hearth daemon (one daemon per STATE_DIR: set another for a second daemon)`)
  }
}

/** The lock's name for `dir` (made if missing): the same for every spelling of the same directory. */
function lockName (dir: string): string {
  makeUsableDir(dir, 'STATE_DIR')
  const real = realpathSync(dir)
  return `\0hearth-state-${createHash('sha256').update(real).digest('hex').slice(0, 32)}`
}

/** Takes `dir` for this process until release() (or its exit); rejects with StateDirInUse when another process holds it. */
export async function lockStateDir (dir: string): Promise<{ release: () => void }> {
  const server: Server = createServer((c) => c.destroy()) // nothing is said on it
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new StateDirInUse(dir) : err))
    server.listen(lockName(dir), () => resolve())
  })
  server.unref() // it holds the name, not the event loop
  return { release: () => { server.close() } }
}
