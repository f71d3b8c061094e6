// One sandbox process tree running one resident bootstrap: start, ready
// handshake, calls one at a time, kill. States: starting → idle ⇄ busy → dead.
import type { Socket } from 'node:net'
import { HearthError, limitError } from '../errors.js'
import { encodeFrame, FrameDecoder, sandboxFrameCap, type CompiledMessage, type InboundMessage } from '../protocol.js'
import type { BytecodeCache } from './bytecode-cache.js'
import type { Breach, SandboxLimits } from './limits/index.js'
import type { ExitStatus, Launch, SandboxProcess } from './process.js'

export type LogStream = 'stdout' | 'stderr'
export type SandboxState = 'starting' | 'idle' | 'busy' | 'dead'

export interface SandboxOptions {
  readonly id: string
  /** runtime name, for messages */
  readonly runtime: string
  readonly limits: SandboxLimits
  readonly spawnTimeoutMs: number
  readonly logMaxBytes: number
  readonly resultMaxBytes: number
  /** Ends a start still under way at once, with shutting_down (the daemon is closing). */
  readonly cancel?: AbortSignal
  /** python: bytecode of code already compiled by a fresh sandbox, sent with it; filled from fresh sandboxes */
  readonly bytecode?: BytecodeCache
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
  /** set once the call's answer has come: what settles it when the raw output before it is read */
  finish?: () => void
  /** the code whose bytecode the run frame asked for, until the call's first frame */
  compiling?: string
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

const destroyedDuringCall = (): HearthError => new HearthError('sandbox_crashed', 'the sandbox was destroyed during the call')

export class Sandbox {
  readonly id: string
  readonly runtime: string
  state: SandboxState = 'starting'
  /** calls served so far */
  uses = 0
  readonly exited: Promise<void>
  /** settles once destroy() has ended it and released its limits (its cgroup removed, or kept for another) */
  readonly released: Promise<void>
  private release: () => void = () => {}

  private readonly proc: SandboxProcess
  private readonly chan: Socket
  private readonly decoder: FrameDecoder
  /** the byte caps every `run` frame carries (the bootstrap cuts what is over them) */
  private readonly caps: { readonly resultMax: number, readonly logMax: number }
  /** the most bytecode asked of the sandbox: what a frame under its cap can carry */
  private readonly bytecodeMax: number
  private readonly limits: SandboxLimits
  private readonly opts: SandboxOptions
  private loadedKey: string | null = null
  private pending: Pending | null = null
  private stderrTail = ''
  private readonly partial: Record<LogStream, string> = { stdout: '', stderr: '' }
  private onReady: ((err: Error | null) => void) | null = null
  private destroying: Promise<void> | null = null

  private constructor (opts: SandboxOptions, proc: SandboxProcess) {
    this.id = opts.id
    this.runtime = opts.runtime
    this.opts = opts
    this.limits = opts.limits
    const frameCap = sandboxFrameCap(opts.resultMaxBytes, opts.logMaxBytes)
    this.decoder = new FrameDecoder(frameCap)
    this.bytecodeMax = Math.min(opts.bytecode?.entryMax ?? 0, frameCap - 4096)
    this.caps = { resultMax: opts.resultMaxBytes, logMax: opts.logMaxBytes }
    this.proc = proc
    this.chan = proc.chan
    this.exited = proc.exited.then((status) => this.onExit(status))
    this.released = new Promise((resolve) => { this.release = resolve })
    this.chan.on('data', (chunk: Buffer) => this.onFrames(chunk))
    this.chan.on('error', () => {}) // EPIPE after a kill; the exit status reports the death
    proc.stdout.on('data', (chunk: Buffer) => this.onRaw('stdout', chunk))
    proc.stderr.on('data', (chunk: Buffer) => this.onRaw('stderr', chunk))
    proc.stdout.on('error', () => {})
    proc.stderr.on('error', () => {})
    // A forked sandbox's sockets come paused (nothing read before these listeners).
    this.chan.resume()
    proc.stdout.resume()
    proc.stderr.resume()
  }

  /** Starts a sandbox and resolves once its bootstrap has sent `ready`. */
  static async start (opts: SandboxOptions, launch: Launch): Promise<Sandbox> {
    // Aborted, with the reason the start fails with, by the spawn timeout or by opts.cancel.
    const stop = new AbortController()
    const timer = setTimeout(() => {
      stop.abort(new HearthError('runtime_unavailable', `${opts.runtime} sandbox not ready after ${opts.spawnTimeoutMs} ms`))
    }, opts.spawnTimeoutMs)
    const cancel = (): void => stop.abort(new HearthError('shutting_down', 'the daemon stopped while the sandbox was starting'))
    if (opts.cancel?.aborted === true) cancel()
    else opts.cancel?.addEventListener('abort', cancel, { once: true })
    const settle = (): void => {
      clearTimeout(timer)
      opts.cancel?.removeEventListener('abort', cancel)
    }
    let proc: SandboxProcess
    try {
      proc = await launch(stop.signal)
    } catch (err) {
      settle()
      await opts.limits.destroy()
      throw stop.signal.aborted ? stop.signal.reason : err
    }
    const sandbox = new Sandbox(opts, proc)
    const ready = new Promise<void>((resolve, reject) => {
      const onStop = (): void => sandbox.end(stop.signal.reason as HearthError)
      if (stop.signal.aborted) onStop()
      else stop.signal.addEventListener('abort', onStop, { once: true })
      sandbox.onReady = (err) => {
        settle()
        stop.signal.removeEventListener('abort', onStop)
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

  /**
   * Runs one call. Rejects with a HearthError; the sandbox stays usable after
   * script_error and result_too_large (the call ended normally), and is dead
   * after any other.
   */
  async run (call: Call): Promise<Outcome> {
    if (this.state !== 'idle') throw new HearthError('internal', `sandbox ${this.id} is ${this.state}`)
    this.state = 'busy'
    this.uses++
    const id = ++callSeq
    // No `code` key at all when the sandbox has it: msgpackr would encode an
    // undefined value as an extension type other decoders do not know.
    let compiling: string | undefined
    let frame: Buffer
    if (this.loadedKey === call.key) {
      frame = encodeFrame({ t: 'run', id, key: call.key, input: call.input, filename: call.filename, ...this.caps })
    } else {
      const compiled = this.opts.bytecode?.get(call.code)
      if (this.uses === 1 && this.opts.bytecode !== undefined) {
        this.opts.bytecode.firstCall(compiled === undefined)
        // Bytecode is asked only of a sandbox no user code has run in yet: what it sends then is the bootstrap's.
        if (compiled === undefined) compiling = call.code
      }
      const bytecode = compiled !== undefined ? { compiled } : compiling !== undefined ? { wantCompiled: this.bytecodeMax } : {}
      frame = encodeFrame({ t: 'run', id, key: call.key, code: call.code, input: call.input, filename: call.filename, ...this.caps, ...bytecode })
    }
    this.loadedKey = call.key
    return await new Promise<Outcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.end(new HearthError('timeout', `the code ran past its ${call.timeoutMs} ms time limit`, { timeoutMs: call.timeoutMs }))
      }, call.timeoutMs)
      this.pending = { id, call, resolve, reject, timer, logBytes: 0, logsTruncated: false, compiling }
      this.chan.write(frame)
    })
  }

  /** The limit the sandbox's cgroup ran into, if any ('unreadable': its counters cannot be read; never reuse it). */
  breach (): Breach | 'unreadable' | null {
    return this.limits.breach()
  }

  /**
   * Kills the whole tree and removes its cgroup. SIGKILL at once: a sandbox has
   * nothing to save, and a SIGTERM grace would only give hostile code more time.
   */
  async destroy (reason?: HearthError): Promise<void> {
    this.destroying ??= (async () => {
      this.end(reason ?? destroyedDuringCall)
      await this.exited
      await this.limits.destroy()
    })().finally(() => this.release())
    await this.destroying
  }

  private onFrames (chunk: Buffer): void {
    let messages: InboundMessage[]
    try {
      messages = this.decoder.push(chunk)
    } catch (err) {
      this.end(new HearthError('protocol_error', (err as Error).message))
      return
    }
    for (const msg of messages) {
      if (this.state === 'dead') return
      this.onMessage(msg)
    }
  }

  private onMessage (msg: InboundMessage): void {
    if (msg.t === 'ready') {
      if (this.state !== 'starting') return this.end(new HearthError('protocol_error', 'second ready frame'))
      this.state = 'idle'
      this.onReady?.(null)
      return
    }
    const p = this.pending
    if (msg.t === 'compiled') return this.compiled(p, msg)
    if (p !== null) p.compiling = undefined // its first frame is not the bytecode: none may come after it
    if (msg.t === 'log') {
      if (p !== null && msg.id === p.id) this.log(p, msg.stream, msg.data)
      return // a stray thread's line after its call ended: dropped
    }
    if (p === null || msg.id !== p.id || p.finish !== undefined) {
      return this.end(new HearthError('protocol_error', `unexpected ${msg.t} frame for call ${msg.id}`))
    }
    if (msg.t === 'error') {
      const err = msg.syntax === undefined
        ? new HearthError('script_error', msg.message, { name: msg.name, stack: msg.stack })
        : new HearthError('syntax_error', msg.message, { ...msg.syntax })
      if (msg.syntax !== undefined) this.loadedKey = null // nothing was loaded: the next call sends its code again
      this.settle(p, () => p.reject(err))
      return
    }
    const size = msg.tooLarge ?? Buffer.byteLength(msg.json ?? msg.stdout ?? '')
    if (size > this.opts.resultMaxBytes) {
      const err = new HearthError('result_too_large', `the result is ${size} bytes, over the ${this.opts.resultMaxBytes}-byte limit`, { bytes: size, limit: this.opts.resultMaxBytes })
      this.settle(p, () => p.reject(err))
      return
    }
    if (msg.json !== undefined && !isJson(msg.json)) {
      return this.end(new HearthError('protocol_error', 'result frame carries invalid JSON'))
    }
    const outcome: Outcome = msg.json !== undefined
      ? { json: msg.json, logsTruncated: p.logsTruncated }
      : { stdout: msg.stdout ?? '', logsTruncated: p.logsTruncated }
    this.settle(p, () => p.resolve(outcome))
  }

  /** The bytecode asked of this fresh sandbox, as the call's first frame, or a protocol error (user code writing to fd 3). */
  private compiled (p: Pending | null, msg: CompiledMessage): void {
    const code = p?.compiling
    if (p === null || msg.id !== p.id || code === undefined) {
      return this.end(new HearthError('protocol_error', `unexpected compiled frame for call ${msg.id}`))
    }
    p.compiling = undefined
    if (msg.data !== undefined) this.opts.bytecode?.set(code, msg.data)
  }

  /**
   * Settles the call once the raw output written before its answer is read.
   * A write to fd 1 or 2 is queued on the daemon's end at once, so that output
   * is readable by now; but this poll phase may not have seen it (measured:
   * `os.write(1, ...)` just before `return` was lost in 1-4 % of calls), and
   * the next one does: one setImmediate ends this loop iteration, the second
   * runs after the next poll phase.
   */
  private settle (p: Pending, finish: () => void): void {
    clearTimeout(p.timer)
    p.finish = finish
    setImmediate(() => setImmediate(() => {
      if (this.pending !== p) return // ended meanwhile: end() finished it
      this.endRawLines(p)
      this.pending = null
      this.state = 'idle'
      finish()
    }))
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

  /**
   * A raw line the call left unended (`printf 'x'`) is its last log line, as
   * the bootstraps end their captured ones: not the start of the next call's.
   */
  private endRawLines (p: Pending): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream] === '') continue
      this.log(p, stream, this.partial[stream])
      this.partial[stream] = ''
    }
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

  private onExit ({ code, signal, error }: ExitStatus): void {
    if (this.state === 'dead') return // ended by the daemon (destroy, a timeout...): nothing waits on why it exited
    if (error !== undefined) {
      this.end(new HearthError('runtime_unavailable', `cannot start the ${this.runtime} sandbox: ${error.message}`))
      return
    }
    const breach = this.limits.breach()
    const how = signal !== null ? `signal ${signal}` : `exit code ${code}`
    if (breach !== null) {
      this.end(limitError(breach))
    } else if (this.state === 'starting') {
      const tail = this.stderrTail.trim().split('\n').slice(-5).join('\n')
      this.end(new HearthError('runtime_unavailable', `${this.runtime} sandbox exited before ready (${how})${tail === '' ? '' : `: ${tail}`}`))
    } else {
      this.end(new HearthError('sandbox_crashed', `the sandbox exited during the call (${how})`, { exit: how }))
    }
  }

  /**
   * Ends the sandbox: fails whatever waits on it with `cause` and kills the
   * tree. A cause given as a function is made only when something waits: an
   * error's stack is not free, and a run-now sandbox ends after every call.
   */
  private end (cause: HearthError | (() => HearthError)): void {
    if (this.state === 'dead') return
    this.state = 'dead'
    const p = this.pending
    this.pending = null
    if (p !== null || this.onReady !== null) {
      const err = typeof cause === 'function' ? cause() : cause
      if (p?.finish !== undefined) p.finish() // its answer came whole before the end
      else if (p !== null) {
        clearTimeout(p.timer)
        p.reject(this.refine(err))
      }
      this.onReady?.(err)
    }
    this.chan.destroy()
    this.proc.kill()
  }

  /** A call that ended badly while its cgroup hit a limit is reported as that limit. */
  private refine (err: HearthError): HearthError {
    if (err.code !== 'timeout' && err.code !== 'sandbox_crashed' && err.code !== 'protocol_error') return err
    const breach = this.limits.breach()
    return breach === null ? err : limitError(breach, err)
  }
}
