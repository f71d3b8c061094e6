// One zygote process: started with bwrap, ready handshake, then `fork`
// requests over its control channel (fd 3) and the exit of every child it
// forked. A zygote that dies takes its children with it (they live in its pid
// namespace), so each of their exits is reported as SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { constants } from 'node:os'
import { encodeFrame, FrameDecoder, validateZygote, type Rlimits, type ZygoteCommand, type ZygoteMessage } from '../protocol.js'
import { killGroup, type ExitStatus } from '../sandbox/process.js'
import { KeptFiles } from '../kept-files.js'
import { children, findChild, findDescendant } from './host-pid.js'
import { reaperBeside } from './library.js'
import { PIPES_IN_ZYGOTE } from './rendezvous.js'

export interface ZygoteOptions {
  readonly argv: readonly string[]
  readonly seccompFile: string | null
  /** the C core (libhearth-zygote.so), handed over as fd 5; the reaper beside it (library.ts) as fd 6 */
  readonly libraryFile: string
  readonly startTimeoutMs: number
  /** lines the zygote (or a child, before it has its own stderr) wrote to fd 2 */
  readonly onStderr?: (line: string) => void
}

/** The zygote started, but says it cannot isolate children on this host. */
export class ZygoteUnavailable extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ZygoteUnavailable'
  }
}

/** How a child is forked (Zygote.fork). */
export interface ForkOptions {
  readonly rlimits?: Rlimits
  /** a directory of the sandboxes' parent cgroup: the zygote forks the child's init into it when it can (Fork.hostPid null) */
  readonly cgroup?: string
  /** a python child copies what a compile writes before it is ready (forker.ts) */
  readonly precompile?: boolean
  /** the child reads the pages its first call will write before it is ready (runtimes/zygote/touch.c): for spares */
  readonly touch?: boolean
}

export interface Fork {
  /** what the daemon places in the sandbox's cgroup: the forked program, or the init of an executed one; null: born there (clone3) or joining it itself */
  readonly hostPid: number | null
  readonly exited: Promise<ExitStatus>
}

interface Child {
  fork?: { resolve: (f: Fork) => void, reject: (e: Error) => void }
  exited: Promise<ExitStatus>
  resolveExit: (s: ExitStatus) => void
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]))

export class Zygote {
  readonly started = Date.now()
  /** forks requested so far */
  forks = 0
  /** pages each python child copies at once (learned by the zygote's probe; 0: every writable page) */
  prefaultPages = 0
  /** read-only pages (libraries' code and constants) each python child maps at once, learned by the same probe */
  premapPages = 0
  /** pages (written and read-only) each python child copies or maps at once before its first compile of user code, learned by the same probe */
  precompilePages = 0
  /** 2 MB pages the runtime's machine code was moved onto, shared by every child (runtimes/zygote/hugetext.c) */
  hugeTextPages = 0
  /** why it was not, when hugeTextPages is 0 */
  hugeTextReason: string | null = null
  /** of the prefault's pages, those fork copies into each child itself (pinned: runtimes/zygote/pin.c) */
  pinnedPages = 0
  /** why none was, when pinnedPages is 0 */
  pinReason: string | null = null
  /** it holds the sandboxes' parent cgroup (v2), to fork each one's init into its cgroup */
  holdsCgroups = false
  private readonly child: ChildProcess
  private readonly opts: ZygoteOptions
  private readonly ctl: Socket
  private readonly decoder = new FrameDecoder<ZygoteMessage>(1 << 20, validateZygote)
  private readonly children = new Map<string, Child>()
  private hostPid = 0
  /** its children's /proc file, read at each fork */
  private readonly files = new KeptFiles()
  private onReady: ((err: Error | null) => void) | null = null
  /** pings sent and not yet answered, by id: each resolves with whether its pong came in time */
  private readonly pings = new Map<number, (answered: boolean) => void>()
  private pingId = 0
  private stderrTail = ''
  /** how the zygote ended, once it has */
  exitStatus = ''
  /** called, a moment after, whenever a child leaves its books: ended, refused or gone before it connected (forker.ts) */
  onChildGone: (() => void) | null = null
  readonly exited: Promise<void>

  private constructor (opts: ZygoteOptions) {
    this.opts = opts
    let seccompFd: number | null = null
    let libraryFd: number | null = null
    let reaperFd: number | null = null
    try { // opened here: one that fails closes those before it (finally)
      seccompFd = opts.seccompFile === null ? null : openSync(opts.seccompFile, 'r')
      libraryFd = openSync(opts.libraryFile, 'r')
      reaperFd = openSync(reaperBeside(opts.libraryFile), 'r')
      this.child = spawn(opts.argv[0] as string, opts.argv.slice(1), {
        stdio: ['ignore', 'ignore', 'pipe', 'pipe', seccompFd ?? 'ignore', libraryFd, reaperFd],
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
        detached: true // a group of its own, for killGroup
      })
    } finally {
      for (const fd of [seccompFd, libraryFd, reaperFd]) if (fd !== null) closeSync(fd)
    }
    this.ctl = this.child.stdio[3] as Socket
    this.ctl.on('data', (chunk: Buffer) => this.onFrames(chunk))
    this.ctl.on('error', () => {})
    let partial = ''
    this.child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8')
      this.stderrTail = (this.stderrTail + text).slice(-4096)
      const lines = (partial + text).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) if (line !== '') opts.onStderr?.(line)
    })
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => { this.onExit(code, signal); resolve() })
      this.child.once('error', (err) => { this.onReady?.(err); resolve() })
    })
  }

  /** Spawns a zygote; resolves once it has said ready, after its self-test passed. */
  static async start (opts: ZygoteOptions): Promise<Zygote> {
    const zygote = new Zygote(opts)
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`zygote not ready after ${opts.startTimeoutMs} ms`)), opts.startTimeoutMs)
        zygote.onReady = (err) => {
          clearTimeout(timer)
          zygote.onReady = null
          if (err === null) resolve()
          else reject(err)
        }
      })
    } catch (err) {
      zygote.kill()
      await zygote.exited
      throw err
    }
    return zygote
  }

  /** its pid on the host, once ready */
  get pid (): number {
    return this.hostPid
  }

  /** Where its children make their pipes (a tmpfs of its own: rendezvous.ts, PIPES), as the daemon reaches it. */
  get pipes (): string {
    return `/proc/${this.hostPid}/root${PIPES_IN_ZYGOTE}`
  }

  /** Whether it is stopped (SIGSTOP, a debugger), as opposed to running or waiting in the kernel: its /proc state T or t. */
  get stopped (): boolean {
    try {
      const stat = readFileSync(`/proc/${this.hostPid}/stat`, 'latin1')
      return /^[Tt]/.test(stat.slice(stat.lastIndexOf(')') + 2))
    } catch {
      return false // gone: its exit is told on its own
    }
  }

  get alive (): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Children forked and not yet exited. */
  get live (): number {
    return this.children.size
  }

  /**
   * Forks a child that will connect to the rendezvous socket with `nonce`.
   * Resolves with its host pid once the zygote has forked it.
   */
  async fork (nonce: string, runtime: 'python' | 'node', o: ForkOptions = {}): Promise<Fork> {
    if (!this.alive) throw new Error('the zygote is gone')
    this.forks++
    let resolveExit!: (s: ExitStatus) => void
    const exited = new Promise<ExitStatus>((resolve) => { resolveExit = resolve })
    return await new Promise<Fork>((resolve, reject) => {
      this.children.set(nonce, { fork: { resolve, reject }, exited, resolveExit })
      this.send({
        t: 'fork',
        nonce,
        ...(runtime === 'node' ? { runtime } : {}),
        ...(o.rlimits === undefined ? {} : { rlimits: o.rlimits }),
        ...(o.cgroup === undefined ? {} : { cgroup: o.cgroup }),
        ...(o.precompile === true ? { precompile: 1 } : {}),
        ...(o.touch === true ? { touch: 1 } : {})
      })
    })
  }

  /** SIGKILL for a child: the zygote still holds it unreaped, so its pid cannot have been reused. */
  killChild (nonce: string): void {
    if (this.children.has(nonce) && this.alive) this.send({ t: 'kill', nonce })
  }

  /**
   * Whether the zygote still reads its channel: true once it answers a ping,
   * false when it has not in `timeoutMs` (stopped, stuck) or has exited.
   */
  async ping (timeoutMs: number): Promise<boolean> {
    if (!this.alive) return false
    const id = ++this.pingId
    return await new Promise((resolve) => {
      const timer = setTimeout(() => answer(false), timeoutMs)
      const answer = (answered: boolean): void => {
        clearTimeout(timer)
        this.pings.delete(id)
        resolve(answered)
      }
      this.pings.set(id, answer)
      this.send({ t: 'ping', id })
    })
  }

  /** No more forks: the zygote exits when its control channel closes; its children die with it. */
  close (): void {
    this.ctl.end()
    const timer = setTimeout(() => this.kill(), 2000)
    timer.unref()
    void this.exited.then(() => clearTimeout(timer))
  }

  kill (): void {
    killGroup(this.child)
  }

  private send (cmd: ZygoteCommand): void {
    this.ctl.write(encodeFrame(cmd))
  }

  private onFrames (chunk: Buffer): void {
    let messages: ZygoteMessage[]
    try {
      messages = this.decoder.push(chunk)
    } catch (err) {
      this.onStderrLine(`the zygote broke the frame protocol: ${(err as Error).message}`)
      this.kill()
      return
    }
    for (const msg of messages) this.onMessage(msg)
  }

  private onStderrLine (line: string): void {
    this.stderrTail = (this.stderrTail + line + '\n').slice(-4096)
    this.opts.onStderr?.(line)
  }

  private onMessage (msg: ZygoteMessage): void {
    switch (msg.t) {
      case 'ready': {
        const pid = this.child.pid === undefined ? null : findDescendant(this.child.pid, msg.pid)
        if (pid === null) {
          this.onReady?.(new Error(`cannot find the zygote (pid ${msg.pid} in its namespace) under bwrap`))
          return
        }
        this.hostPid = pid
        this.prefaultPages = typeof msg.prefault === 'number' ? msg.prefault : 0
        this.premapPages = typeof msg.premap === 'number' ? msg.premap : 0
        this.precompilePages = typeof msg.precompile === 'number' ? msg.precompile : 0
        this.holdsCgroups = msg.cgroups === true
        this.hugeTextPages = typeof msg.hugeText === 'number' ? msg.hugeText : 0
        this.hugeTextReason = reasonUnless(this.hugeTextPages, msg.hugeTextReason)
        this.pinnedPages = typeof msg.pinned === 'number' ? msg.pinned : 0
        this.pinReason = reasonUnless(this.pinnedPages, msg.pinReason)
        this.onReady?.(null)
        return
      }
      case 'unavailable':
        this.onReady?.(new ZygoteUnavailable(msg.message))
        return
      case 'forked': {
        const child = this.children.get(msg.nonce)
        if (child?.fork === undefined) return
        const fork = child.fork
        child.fork = undefined
        if (msg.placed === true) {
          fork.resolve({ hostPid: null, exited: child.exited })
          return
        }
        const init = findChild(children(this.hostPid, this.files), msg.pid)
        const hostPid = msg.program === true && init !== null ? onlyChild(init) : init
        if (hostPid === null) {
          this.killChild(msg.nonce)
          fork.reject(new Error(`cannot find the forked ${msg.program === true ? 'program' : 'child'} (init is pid ${msg.pid} in the zygote)`))
          return
        }
        fork.resolve({ hostPid, exited: child.exited })
        return
      }
      case 'failed': {
        const child = this.remove(msg.nonce)
        child?.fork?.reject(new Error(`the zygote cannot fork: ${msg.message}`))
        child?.resolveExit({ code: null, signal: null, error: new Error(msg.message) })
        return
      }
      case 'pong':
        this.pings.get(msg.id)?.(true)
        return
      case 'exited': {
        const child = this.remove(msg.nonce)
        if (child === undefined) return
        const status = { code: msg.code, signal: msg.signal === null ? null : SIGNAL_NAMES.get(msg.signal) ?? 'SIGKILL' }
        child.fork?.reject(new Error(`the forked child exited at once (${describe(status)})`))
        child.resolveExit(status)
      }
    }
  }

  /** `nonce`'s child off the books (ended, refused, gone before it connected); onChildGone a moment after. */
  private remove (nonce: string): Child | undefined {
    const child = this.children.get(nonce)
    if (child === undefined) return undefined
    this.children.delete(nonce)
    queueMicrotask(() => this.onChildGone?.())
    return child
  }

  private onExit (code: number | null, signal: NodeJS.Signals | null): void {
    const how = signal !== null ? `signal ${signal}` : `exit code ${code}`
    this.exitStatus = how
    const tail = this.stderrTail.trim().split('\n').slice(-5).join('\n')
    this.onReady?.(new Error(`the zygote exited before ready (${how})${tail === '' ? '' : `: ${tail}`}`))
    // What it started may outlive it, for a moment: bwrap killed before its
    // sandbox armed --die-with-parent. It ends as a zygote ends, at the end
    // of its control channel.
    this.ctl.destroy()
    this.files.close()
    for (const child of this.children.values()) {
      child.fork?.reject(new Error(`the zygote exited (${how})`))
      child.resolveExit({ code: null, signal: 'SIGKILL' })
    }
    this.children.clear()
    for (const answer of this.pings.values()) answer(false)
  }
}

/** A forked program: init's only child until it is let go. */
function onlyChild (init: number): number | null {
  const kids = children(init)
  return kids.length === 1 ? kids[0] as number : null
}

function describe (s: ExitStatus): string {
  return s.signal !== null ? `signal ${s.signal}` : `exit code ${s.code}`
}

/** Why a ready frame's count of pages is 0 (its reason, or "not reported"); null when it is not. */
function reasonUnless (pages: number, reason: unknown): string | null {
  return pages > 0 ? null : typeof reason === 'string' ? reason : 'not reported'
}
