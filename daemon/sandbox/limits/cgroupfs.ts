// Small helpers shared by the cgroup v1 and v2 backends.
import { chmodSync, chownSync, closeSync, openSync, readFileSync, rmdirSync, write } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { KeptFiles } from '../../kept-files.js'
import { pidAlive } from '../../pid-alive.js'
import type { Breach } from './types.js'

/**
 * argv prefix that writes its own pid into each cgroup.procs file, then execs the
 * rest of the argv: the process is inside its cgroups before anything runs that
 * could fork, so there is no window for a child to start outside the limits.
 */
export function joinPrefix (procsFiles: readonly string[]): string[] {
  const script = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"'
  return ['/bin/sh', '-c', script, 'hearth-join', String(procsFiles.length), ...procsFiles]
}

export interface Mount { path: string, fstype: string, options: string[] }

export function mounts (): Mount[] {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').filter(Boolean).map((line) => {
    const f = line.split(' ')
    return { path: (f[1] ?? '').replace(/\\040/g, ' '), fstype: f[2] ?? '', options: (f[3] ?? '').split(',') }
  })
}

/** The calling process's cgroup per hierarchy: key = controller list ('' for v2). */
export function ownCgroups (): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line)
    if (m !== null) out.set(m[1] as string, m[2] as string)
  }
  return out
}

const patterns = new Map<string, RegExp>()
function counterPattern (key: string): RegExp {
  let re = patterns.get(key)
  if (re === undefined) patterns.set(key, re = new RegExp(`^${key} (\\d+)$`, 'm'))
  return re
}

/**
 * Reads `key value` counters (memory.events, pids.events, memory.oom_control).
 * Runs after every call, so each file is opened once and re-read with one
 * pread: a few microseconds instead of an open/read/close per counter. The
 * files are opened when the sandbox's cgroup is made, off the request path: a
 * fresh sandbox's first check after its call would otherwise open them there
 * (measured on cgroup v1: 130-260 us of a paced run-now call's ~1.1 ms in the
 * daemon, against ~25 us for the preads alone).
 */
export class Counters {
  /** the counter files, and the cgroup.procs ones given (placePid and killProcs use them) */
  readonly files = new KeptFiles()
  /** each check's value when the cgroup was last handed to a sandbox (rebase): what counts as "not hit" */
  private base: number[]

  /**
   * `checks`: each limit with the file and key of its counter, in the order
   * breach() tries them. `procs`: the cgroup.procs files, kept open as well,
   * for writing (placePid) and for reading (killProcs): re-opened for each
   * sandbox they were ~7 of the ~10 files the daemon opened per run-now call
   * on cgroup v1 (perf: open and close ~8 % of its main thread).
   */
  constructor (private readonly checks: ReadonlyArray<readonly [Breach, string, string]>, procs: readonly string[] = []) {
    this.base = checks.map(() => 0)
    for (const [, file] of checks) {
      try { this.files.reader(file) } catch {} // breach() opens it again, or says 'unreadable'
    }
    for (const file of procs) {
      try {
        this.files.reader(file)
        this.files.writer(file)
      } catch {} // opened again when used, or failing there
    }
  }

  /** The counter's value (0 when the file does not list it); throws when the file cannot be read. */
  read (file: string, key: string): number {
    const m = counterPattern(key).exec(this.files.read(file))
    return m === null ? 0 : Number(m[1])
  }

  /** A file that holds one number (memory.current, memory.usage_in_bytes); throws when it cannot be read. */
  number (file: string): number {
    return Number(this.files.read(file).trim())
  }

  /**
   * From now on only counts above their values now are breaches: the cgroup
   * goes to another sandbox (spares.ts), and the counters are cumulative.
   * False when one cannot be read: such a cgroup is not handed on.
   */
  rebase (): boolean {
    try {
      this.base = this.checks.map(([, file, key]) => this.read(file, key))
      return true
    } catch {
      return false
    }
  }

  /**
   * The limit a sandbox ran into, from its counters in order; 'unreadable' when
   * one cannot be read (the cgroup is gone): a read error must not pass for "no
   * limit hit", so such a sandbox is never reused.
   */
  breach (): Breach | 'unreadable' | null {
    try {
      for (const [i, [breach, file, key]] of this.checks.entries()) if (this.read(file, key) > (this.base[i] as number)) return breach
      return null
    } catch {
      return 'unreadable'
    }
  }

  close (): void {
    this.files.close()
  }
}

/**
 * The cgroup files a sandbox's start and end touch (mkdir, limits, counters,
 * cgroup.procs reads, rmdir) are read and written synchronously: they are
 * kernel state, answered in microseconds, and through libuv's thread pool each
 * costs ~10x the CPU (measured: 2.7 ms against 0.33 ms of daemon CPU per
 * sandbox in three v1 hierarchies). The one write that can wait in the kernel,
 * a pid into cgroup.procs, stays asynchronous: placePid.
 *
 * killProcs: SIGKILL to every process in the cgroup; true when there was none
 * (read through `files`, a sandbox's Counters' files, when given).
 */
export function killProcs (procsFile: string, files?: KeptFiles): boolean {
  let pids: string[]
  try {
    pids = (files?.read(procsFile) ?? readFileSync(procsFile, 'latin1')).split('\n').filter(Boolean)
  } catch {
    return false
  }
  for (const pid of pids) {
    try { process.kill(Number(pid), 'SIGKILL') } catch {}
  }
  return pids.length === 0
}

/**
 * A sandbox cgroup's cgroup.procs files (one per hierarchy) given to the
 * zygotes' host uid `owner` (null: the daemon's own, whose they are), their
 * directories made searchable (0711, not listable: under systemd's
 * UMask=0077 they are made 0700), for a zygote to fork a child into it (v2,
 * fork-into.ts) or a child to join it (join-v1.ts; v2 without clone3).
 * Synchronously, as the cgroup was made.
 */
export function giveToZygotes (procsFiles: readonly string[], owner: number | null): void {
  for (const file of procsFiles) {
    chmodSync(dirname(file), 0o711)
    if (owner !== null) chownSync(file, owner, -1)
  }
}

/**
 * A pid into cgroup.procs files, all at once: each write on the thread pool
 * (it can wait for an RCU grace period: measured synchronously, 0.2 ms at p50
 * but 3.9 ms at p90 and 22 ms at worst, on the event loop). A sandbox's files
 * are written through the fds its Counters keep open (`files`); others are
 * opened and closed here, synchronously (through fs/promises, open, write and
 * close are three thread-pool trips each).
 */
export async function placePid (procsFiles: readonly string[], pid: number, files?: KeptFiles): Promise<void> {
  const text = Buffer.from(String(pid))
  const opened: number[] = []
  try {
    const fds = procsFiles.map((file) => {
      if (files !== undefined) return files.writer(file)
      const fd = openSync(file, 'w')
      opened.push(fd)
      return fd
    })
    await Promise.all(fds.map(async (fd) => await new Promise<void>((resolve, reject) => {
      write(fd, text, (err) => { if (err === null) resolve(); else reject(err) })
    })))
  } finally {
    for (const fd of opened) closeSync(fd)
  }
}

/**
 * rmdir, retried: a pid-namespaced tree stays charged to its cgroup for a moment
 * after it exits (measured ~2 s on cgroup v1), and rmdir answers EBUSY until then.
 */
export async function removeCgroup (dir: string, procsFile = `${dir}/cgroup.procs`, tries = 40): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    try {
      rmdirSync(dir)
      return true
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return true
      if (code !== 'EBUSY') return false
    }
    killProcs(procsFile)
    await sleep(Math.min(50 * (i + 1), 500))
  }
  return false
}

/** A sandbox's cgroup is named <language>-<daemon pid>-<n> (runner.ts). */
const SANDBOX_NAME = /^[a-z]+-(\d+)-\d+$/

/**
 * The sandbox cgroups under `parent` left by daemons that are gone (SIGKILL
 * leaves them, empty, forever): killed and removed. A daemon's are told apart
 * by its pid in their names, so another daemon sharing CGROUP_NAME keeps its own.
 * Returns how many were removed.
 */
export async function removeStaleSandboxes (parent: string): Promise<number> {
  let names: string[] = []
  try {
    names = (await readdir(parent, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name)
  } catch {
    return 0
  }
  const stale = names.filter((name) => {
    const m = SANDBOX_NAME.exec(name)
    return m !== null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))
  })
  const removed = await Promise.all(stale.map(async (name) => await removeCgroup(join(parent, name))))
  return removed.filter(Boolean).length
}

/**
 * Makes one sandbox's cgroups, limits written, and removes them: the error
 * that stopped it, or null. A backend whose parents exist may still be
 * refused its sandboxes' cgroups: a parent left by a daemon of another user
 * (root's, under the same CGROUP_NAME) is the next one's to enter, not to
 * write (seen: every sandbox start then failed with EACCES). `dirs`: what
 * `make` makes, removed whatever it got to. The name given should be a
 * sandbox's (SANDBOX_NAME), so that one a crash leaves is removed as stale.
 */
export async function probeSandboxCgroups<T> (make: () => T, remove: (made: T) => Promise<void>, dirs: readonly string[]): Promise<Error | null> {
  try {
    await remove(make())
    return null
  } catch (err) {
    for (const dir of dirs) {
      try { rmdirSync(dir) } catch {}
    }
    return err as Error
  }
}
