// One daemon per STATE_DIR. Two on one directory each started an embedded
// redis-server on the same socket path and data files (seen: the first's
// server exited as the second's started, was restarted, and both then ran on
// that path), and would share the packages' layers and the C core's build. The lock is an abstract unix socket named after the
// directory's real path: binding it is atomic, and the kernel drops it with
// the process, so a daemon killed with SIGKILL leaves no stale lock behind.
import { createHash } from 'node:crypto'
import { accessSync, constants, existsSync, mkdirSync, realpathSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { dirname, resolve } from 'node:path'
import { CannotStart } from './errors.js'

export class StateDirInUse extends CannotStart {
  constructor (dir: string) {
    super(`STATE_DIR ${dir} is in use by another hearth daemon (one daemon per STATE_DIR: set another for a second daemon)`)
  }
}

/**
 * `dir` made if missing, one level at a time (Node's recursive mkdir loops for
 * ever where mkdir answers ENOENT, as under /proc), a directory this process
 * may write; else CannotStart saying why, before anything was started (a file,
 * a read-only filesystem, another user's directory gave a stack from deep in
 * the start, or no answer at all).
 */
function makeStateDir (dir: string): void {
  const missing: string[] = []
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) missing.unshift(d)
  try {
    for (const d of missing) mkdirSync(d)
    if (!statSync(dir).isDirectory()) throw new Error('not a directory')
    accessSync(dir, constants.W_OK | constants.X_OK)
  } catch (err) {
    throw new CannotStart(`STATE_DIR ${dir} cannot be used: ${(err as Error).message}`)
  }
}

/** The lock's name for `dir` (made if missing): the same for every spelling of the same directory. */
function lockName (dir: string): string {
  makeStateDir(dir)
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
