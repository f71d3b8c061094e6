// This daemon's directory under RUNTIME_DIR: what sandboxes must reach
// (zygote rendezvous sockets) lives here, in a place the sandbox uid can
// traverse whatever the checkout's own permissions. Named <pid>-<random>, so a
// directory whose daemon died (SIGKILL) is recognised and removed at the next start.
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { CannotStart } from './errors.js'
import { pidAlive } from './pid-alive.js'
import { makeUsableDir } from './usable-dir.js'

/** Removes directories left by daemons that are gone; returns how many. */
export function removeStale (runtimeDir: string): number {
  let removed = 0
  let entries: string[] = []
  try { entries = readdirSync(runtimeDir) } catch { return 0 }
  for (const name of entries) {
    const m = /^(\d+)-[A-Za-z0-9]+$/.exec(name)
    if (m === null || pidAlive(Number(m[1]))) continue
    rmSync(join(runtimeDir, name), { recursive: true, force: true })
    removed++
  }
  return removed
}

export function makeInstanceDir (runtimeDir: string): string {
  makeUsableDir(runtimeDir, 'RUNTIME_DIR', 0o755)
  try {
    chmodSync(runtimeDir, 0o755) // whatever the umask (hearth.service: UMask=0077)
    const dir = mkdtempSync(join(runtimeDir, `${process.pid}-`))
    chmodSync(dir, 0o755)
    return dir
  } catch (err) {
    throw new CannotStart(`RUNTIME_DIR ${runtimeDir} cannot be used: ${(err as Error).message}`)
  }
}
