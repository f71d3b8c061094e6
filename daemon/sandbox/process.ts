// What a Sandbox drives: a process tree with a frame channel, raw stdout and
// stderr, an exit status and a kill switch. Spawned by bwrap here, or forked
// by a zygote (daemon/zygote/).
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { sandboxArgv } from './argv.js'
import type { SandboxLimits } from './limits/index.js'
import type { MakePipe } from './pipes.js'
import type { RuntimeSpec } from './runtimes.js'

export interface ExitStatus {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** the process could not be started at all */
  readonly error?: Error
}

export interface SandboxProcess {
  /** frames both ways (runtimes/PROTOCOL.md) */
  readonly chan: Socket
  /** raw fd 1 / fd 2 of everything in the sandbox */
  readonly stdout: Readable
  readonly stderr: Readable
  /** resolves once the whole tree is gone */
  readonly exited: Promise<ExitStatus>
  readonly alive: boolean
  /** SIGKILL for the whole tree */
  kill: () => void
}

/**
 * Starts a sandbox's process tree: a bwrap spawn, or a fork from a zygote.
 * `signal` aborts when the spawn timeout runs out; the launcher then cleans up
 * whatever it started and rejects.
 */
export type Launch = (signal: AbortSignal) => Promise<SandboxProcess>

export interface SpawnSpec {
  readonly runtime: RuntimeSpec
  /** host uid to run bwrap as when the daemon is root; null when not root */
  readonly hostUid: number | null
  readonly tmpBytes: number
  readonly seccompFile: string | null
  /** from probeBwrap(): false where --disable-userns cannot work */
  readonly disableUserns?: boolean
  /** pipes for fds 1 and 2 (pipes.ts); socket pairs without */
  readonly pipes?: MakePipe | null
}

/** The spawn path: a fresh bwrap tree per sandbox, its limits joined before bwrap starts. */
export function spawnLaunch (spec: SpawnSpec, limits: SandboxLimits): Launch {
  return async () => spawnProcess(sandboxArgv({
    runtime: spec.runtime,
    limitsPrefix: limits.prefix,
    hostUid: spec.hostUid,
    tmpBytes: spec.tmpBytes,
    seccompFd: spec.seccompFile === null ? null : 4,
    disableUserns: spec.disableUserns
  }), spec.seccompFile, spec.pipes)
}

/**
 * SIGKILL for a process spawned `detached` (it leads a process group), and
 * for its group: bwrap clones its sandbox's first process before it lets it
 * run, and that process waits for bwrap's word before it can die with bwrap
 * (--die-with-parent); bwrap killed in between left it waiting forever
 * (measured: 8 of 100 kills in bwrap's first 8 ms). Until it runs it is in
 * bwrap's group.
 */
export function killGroup (child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    child.kill('SIGKILL') // no group (it is gone, or was not spawned detached)
  }
}

/** A sandbox started as `argv` (limits prefix, setpriv, bwrap), frames on fd 3, the seccomp program on fd 4; fds 1 and 2 pipes from `pipes` when given. */
export function spawnProcess (argv: readonly string[], seccompFile: string | null, pipes?: MakePipe | null): SandboxProcess {
  const seccompFd = seccompFile === null ? null : openSync(seccompFile, 'r')
  let out: [number, number] | null = null
  let err: [number, number] | null = null
  let child
  try {
    out = pipes?.() ?? null
    err = out === null ? null : (pipes as MakePipe)()
    child = spawn(argv[0] as string, argv.slice(1), {
      stdio: ['ignore', out?.[1] ?? 'pipe', err?.[1] ?? 'pipe', 'pipe', seccompFd ?? 'ignore'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, // for sh, setpriv, bwrap; bwrap clears it again
      detached: true // a group of its own, for killGroup
    })
  } catch (e) {
    for (const fd of [out?.[0], err?.[0]]) if (fd !== undefined) closeSync(fd)
    throw e
  } finally {
    for (const fd of [seccompFd, out?.[1], err?.[1]]) if (fd !== null && fd !== undefined) closeSync(fd) // the child has its copies
  }
  const stdout = out === null ? child.stdout as Readable : readEnd(out[0])
  const stderr = err === null ? child.stderr as Readable : readEnd(err[0])
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('error', (error) => resolve({ code: null, signal: null, error }))
  })
  return {
    chan: child.stdio[3] as Socket,
    stdout,
    stderr,
    exited,
    get alive () { return child.exitCode === null && child.signalCode === null },
    kill: () => { killGroup(child) }
  }
}

/** A pipe's read end as a stream (a spawned sandbox's here, a forked one's in zygote/rendezvous.ts). */
export function readEnd (fd: number): Socket {
  return new Socket({ fd, readable: true, writable: false })
}
