// One bwrap process tree running one resident bootstrap: spawn, ready handshake,
// calls one at a time, kill. States: starting → idle ⇄ busy → dead.
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import type { Socket } from 'node:net'
import { HearthError } from '../errors.js'
import { encodeFrame, FrameDecoder, type InboundMessage } from '../protocol.js'
import { sandboxArgv } from './argv.js'
import type { Breach, SandboxLimits } from './limits/index.js'
import type { RuntimeSpec } from './runtimes.js'

export type LogStream = 'stdout' | 'stderr'
export type SandboxState = 'starting' | 'idle' | 'busy' | 'dead'

export interface SandboxOptions {
  readonly id: string
  readonly runtime: RuntimeSpec
  readonly limits: SandboxLimits
  readonly hostUid: number | null
  readonly tmpBytes: number
  readonly seccompFile: string | null
  readonly disableUserns?: boolean
  readonly spawnTimeoutMs: number
  readonly logMaxBytes: number
  readonly resultMaxBytes: number
}

export interface Call {
  readonly key: string
  readonly code: string
  readonly input: string // JSON text
  readonly filename: string
  readonly timeoutMs: number
  readonly onLog?: (stream: LogStream, line: string) => void
}

export interface Outcome {
  /** JSON text of the returned value, or undefined when the code returned nothing */
  readonly json?: string
  /** last non-empty stdout line, when nothing was returned */
  readonly stdout?: string
  readonly logBytes: number
  readonly logsTruncated: boolean
}

interface Pending {
  readonly id: number
  readonly call: Call
  readonly resolve: (o: Outcome) => void
  readonly reject: (e: HearthError) => void
  readonly timer: NodeJS.Timeout
  logBytes: number
  logsTruncated: boolean
}

const STDERR_TAIL = 4096

// The result's JSON text goes into the response as it is, so it must be JSON.
function isJson (text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}
let callSeq = 0

export class Sandbox {
  readonly id: string
  readonly runtime: string
  state: SandboxState = 'starting'
  /** calls served so far */
  uses = 0
  /** set by whoever owns the sandbox after the pool let go of it */
  adopted = false
  readonly exited: Promise<void>

  private readonly child: ChildProcess
  private readonly chan: Socket
  private readonly decoder = new FrameDecoder()
  private readonly limits: SandboxLimits
  private readonly opts: SandboxOptions
  private loadedKey: string | null = null
  private pending: Pending | null = null
  private stderrTail = ''
  private readonly partial: Record<LogStream, string> = { stdout: '', stderr: '' }
  private onReady: ((err: Error | null) => void) | null = null
  private destroying: Promise<void> | null = null

  private constructor (opts: SandboxOptions) {
    this.id = opts.id
    this.runtime = opts.runtime.name
    this.opts = opts
    this.limits = opts.limits
    const seccompFd = opts.seccompFile === null ? null : openSync(opts.seccompFile, 'r')
    const argv = sandboxArgv({
      runtime: opts.runtime,
      limitsPrefix: opts.limits.prefix,
      hostUid: opts.hostUid,
      tmpBytes: opts.tmpBytes,
      seccompFd: seccompFd === null ? null : 4,
      disableUserns: opts.disableUserns
    })
    try {
      this.child = spawn(argv[0] as string, argv.slice(1), {
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', seccompFd ?? 'ignore'],
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } // for sh, setpriv, bwrap; bwrap clears it again
      })
    } finally {
      if (seccompFd !== null) closeSync(seccompFd)
    }
    this.chan = this.child.stdio[3] as Socket
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()))
    this.child.once('exit', (code, signal) => this.onExit(code, signal))
    this.child.once('error', (err) => this.fail(new HearthError('runtime_unavailable', `cannot start bwrap: ${err.message}`)))
    this.chan.on('data', (chunk: Buffer) => this.onFrames(chunk))
    this.chan.on('error', () => {}) // EPIPE after a kill; 'exit' reports the death
    this.child.stdout?.on('data', (chunk: Buffer) => this.onRaw('stdout', chunk))
    this.child.stderr?.on('data', (chunk: Buffer) => this.onRaw('stderr', chunk))
  }

  /** Spawns a sandbox and resolves once its bootstrap has sent `ready`. */
  static async start (opts: SandboxOptions): Promise<Sandbox> {
    const sandbox = new Sandbox(opts)
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        sandbox.fail(new HearthError('runtime_unavailable', `${opts.runtime.name} sandbox not ready after ${opts.spawnTimeoutMs} ms`))
      }, opts.spawnTimeoutMs)
      sandbox.onReady = (err) => {
        clearTimeout(timer)
        sandbox.onReady = null
        if (err === null) resolve()
        else reject(err)
      }
    })
    try {
      await ready
    } catch (err) {
      await sandbox.destroy()
      throw err
    }
    return sandbox
  }

  get pid (): number | undefined {
    return this.child.pid
  }

  /** Runs one call. Rejects with a HearthError; the sandbox is dead after any error but script_error. */
  async run (call: Call): Promise<Outcome> {
    if (this.state !== 'idle') throw new HearthError('internal', `sandbox ${this.id} is ${this.state}`)
    this.state = 'busy'
    this.uses++
    const id = ++callSeq
    // No `code` key at all when the sandbox has it: msgpackr would encode an
    // undefined value as an extension type other decoders do not know.
    const frame = this.loadedKey === call.key
      ? encodeFrame({ t: 'run', id, key: call.key, input: call.input, filename: call.filename })
      : encodeFrame({ t: 'run', id, key: call.key, code: call.code, input: call.input, filename: call.filename })
    this.loadedKey = call.key
    return await new Promise<Outcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new HearthError('timeout', `the code ran past its ${call.timeoutMs} ms time limit`, { timeoutMs: call.timeoutMs }))
      }, call.timeoutMs)
      this.pending = { id, call, resolve, reject, timer, logBytes: 0, logsTruncated: false }
      this.chan.write(frame)
    })
  }

  /** The limit the sandbox's cgroup ran into, if any. */
  breach (): Breach | null {
    return this.limits.breach()
  }

  /**
   * Kills the whole tree and removes its cgroup. SIGKILL at once: a sandbox has
   * nothing to save, and a SIGTERM grace would only give hostile code more time.
   */
  async destroy (): Promise<void> {
    this.destroying ??= (async () => {
      this.fail(new HearthError('sandbox_crashed', 'the sandbox was destroyed during the call'))
      await this.exited
      await this.limits.destroy()
    })()
    await this.destroying
  }

  private onFrames (chunk: Buffer): void {
    let messages: InboundMessage[]
    try {
      messages = this.decoder.push(chunk)
    } catch (err) {
      this.fail(new HearthError('protocol_error', (err as Error).message))
      return
    }
    for (const msg of messages) {
      if (this.state === 'dead') return
      this.onMessage(msg)
    }
  }

  private onMessage (msg: InboundMessage): void {
    if (msg.t === 'ready') {
      if (this.state !== 'starting') return this.fail(new HearthError('protocol_error', 'second ready frame'))
      this.state = 'idle'
      this.onReady?.(null)
      return
    }
    const p = this.pending
    if (msg.t === 'log') {
      if (p !== null && msg.id === p.id) this.log(p, msg.stream, msg.data)
      return // a stray thread's line after its call ended: dropped
    }
    if (p === null || msg.id !== p.id) {
      return this.fail(new HearthError('protocol_error', `unexpected ${msg.t} frame for call ${msg.id}`))
    }
    if (msg.t === 'error') {
      const err = new HearthError('script_error', msg.message, { name: msg.name, stack: msg.stack })
      this.settle(p, () => p.reject(err))
      return
    }
    const size = Buffer.byteLength(msg.json ?? msg.stdout ?? '')
    if (size > this.opts.resultMaxBytes) {
      const err = new HearthError('result_too_large', `the result is ${size} bytes, over the ${this.opts.resultMaxBytes}-byte limit`, { bytes: size, limit: this.opts.resultMaxBytes })
      this.settle(p, () => p.reject(err))
      return
    }
    if (msg.json !== undefined && !isJson(msg.json)) {
      return this.fail(new HearthError('protocol_error', 'result frame carries invalid JSON'))
    }
    const outcome: Outcome = msg.json !== undefined
      ? { json: msg.json, logBytes: p.logBytes, logsTruncated: p.logsTruncated }
      : { stdout: msg.stdout ?? '', logBytes: p.logBytes, logsTruncated: p.logsTruncated }
    this.settle(p, () => p.resolve(outcome))
  }

  private settle (p: Pending, finish: () => void): void {
    clearTimeout(p.timer)
    this.pending = null
    this.state = 'idle'
    finish()
  }

  /** Forwards one log line, up to the call's log byte cap; truncation is reported once. */
  private log (p: Pending, stream: LogStream, line: string): void {
    if (p.logsTruncated) return
    const size = Buffer.byteLength(line) + 1
    if (p.logBytes + size > this.opts.logMaxBytes) {
      p.logsTruncated = true
      p.call.onLog?.('stderr', `[hearth] log output truncated at ${this.opts.logMaxBytes} bytes`)
      return
    }
    p.logBytes += size
    p.call.onLog?.(stream, line)
  }

  /** Raw fd 1/2 output (C code, child processes): lines go to the running call as logs. */
  private onRaw (stream: LogStream, chunk: Buffer): void {
    const text = chunk.toString('utf8')
    if (stream === 'stderr') this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL)
    const lines = (this.partial[stream] + text).split('\n')
    this.partial[stream] = lines.pop() ?? ''
    if (this.partial[stream].length > 65536) { // a never-ending line still flows
      lines.push(this.partial[stream])
      this.partial[stream] = ''
    }
    const p = this.pending
    if (p === null) return
    for (const line of lines) this.log(p, stream, line)
  }

  private onExit (code: number | null, signal: NodeJS.Signals | null): void {
    const breach = this.limits.breach()
    const how = signal !== null ? `signal ${signal}` : `exit code ${code}`
    if (breach === 'memory') {
      this.fail(new HearthError('memory_limit', 'the code exceeded its memory limit and was killed'))
    } else if (breach === 'pids') {
      this.fail(new HearthError('pids_limit', 'the code exceeded its process limit'))
    } else if (this.state === 'starting') {
      const tail = this.stderrTail.trim().split('\n').slice(-5).join('\n')
      this.fail(new HearthError('runtime_unavailable', `${this.runtime} sandbox exited before ready (${how})${tail === '' ? '' : `: ${tail}`}`))
    } else {
      this.fail(new HearthError('sandbox_crashed', `the sandbox exited during the call (${how})`, { exit: how }))
    }
  }

  /** Ends the sandbox: fails whatever waits on it with `err` and kills the tree. */
  private fail (err: HearthError): void {
    if (this.state === 'dead') return
    this.state = 'dead'
    const p = this.pending
    this.pending = null
    if (p !== null) {
      clearTimeout(p.timer)
      p.reject(this.refine(err))
    }
    this.onReady?.(err)
    this.chan.destroy()
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }

  /** A call that ended badly while its cgroup hit a limit is reported as that limit. */
  private refine (err: HearthError): HearthError {
    if (err.code !== 'timeout' && err.code !== 'sandbox_crashed' && err.code !== 'protocol_error') return err
    const breach = this.limits.breach()
    if (breach === 'memory') return new HearthError('memory_limit', 'the code exceeded its memory limit and was killed')
    if (breach === 'pids') return new HearthError('pids_limit', `the code exceeded its process limit${err.code === 'timeout' ? ' and ran past its time limit' : ''}`)
    return err
  }
}
