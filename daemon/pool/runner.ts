// Runs one call end to end: find a sandbox under the isolation contract, run,
// then keep the sandbox for its function or destroy it.
import { LANGUAGES, sandboxHostUid, type Config, type Language } from '../config.js'
import { mapStack, prepare, type Prepared } from '../compile/index.js'
import { HearthError, limitError } from '../errors.js'
import { typeResult, type TypedResult } from '../result.js'
import type { LimitsBackend } from '../sandbox/limits/index.js'
import { layerBind, RUNTIME_OF, runtimeSpec, type RuntimeFiles, type RuntimeName, type RuntimeSpec } from '../sandbox/runtimes.js'
import { BytecodeCache } from '../sandbox/bytecode-cache.js'
import { pipeMaker } from '../sandbox/pipes.js'
import { spawnLaunch } from '../sandbox/process.js'
import { Sandbox, type LogStream, type Outcome } from '../sandbox/sandbox.js'
import type { Forker, ForkerStats } from '../zygote/index.js'
import { addonBeside } from '../zygote/library.js'
import { LanguagePool, type LanguagePoolStats } from './language-pool.js'
import { NO_OBSERVER, type DestroyReason, type LimitName, type RunObserver } from './observer.js'
import { WaitLimit } from './wait-limit.js'
import { RetryClaim, WarmSet, type Claim } from './warm-set.js'

export interface RunRequest {
  readonly language: Language
  readonly code: string
  readonly input: string // JSON text
  readonly timeoutMs: number
  /** `path@version` of a stored function; absent for /run-now code */
  readonly functionKey?: string
  readonly onLog?: (stream: LogStream, line: string) => void
  /**
   * A host directory of packages (daemon/packages) the function needs: its
   * sandboxes are started for it, spawned with the layer bound read-only
   * (sandbox/runtimes.ts layerBind), never taken from the language pool.
   */
  readonly layer?: string
  /** aborted when the caller goes away: the sandbox is killed at once */
  readonly signal?: CallerGone
}

/**
 * How a call learns that its caller went away: the part of AbortSignal a call
 * uses. The HTTP exchange implements it with a flag and a callback, which the
 * bench's profile showed cheaper than an AbortController per request.
 */
export interface CallerGone {
  readonly aborted: boolean
  addEventListener: (type: 'abort', listener: () => void, options?: { once?: boolean }) => void
  removeEventListener: (type: 'abort', listener: () => void) => void
}

export interface RunResult extends TypedResult {
  readonly logsTruncated: boolean
  /** whether the call ran in a sandbox that had served this function before */
  readonly warm: boolean
}

export interface RunnerOptions {
  readonly config: Config
  /** what sandboxes run, installed where the sandbox uid can read it (daemon/runtime-files.ts) */
  readonly runtimeFiles: RuntimeFiles
  readonly limits: LimitsBackend
  readonly seccompFile: string | null
  /** from probeBwrap(): false where --disable-userns cannot work */
  readonly disableUserns?: boolean
  readonly onSpawnError?: (language: Language, err: Error, failures: number) => void
  /** a sandbox teardown that failed off the request path */
  readonly onBackgroundError?: (err: Error) => void
  /** replaces a runtime's bootstrap (tests: runtimes that crash or hang on start); such a runtime is spawned */
  readonly runtimes?: Partial<Record<RuntimeName, RuntimeSpec>>
  /** zygotes that fork fresh sandboxes, for the runtimes that have one (daemon/zygote) */
  readonly forkers?: Partial<Record<RuntimeName, Forker>>
  /** told of every call, start and kill (the metrics) */
  readonly observer?: RunObserver
}

/** How a runtime's fresh sandboxes come to be: forked from a zygote, or spawned. */
export type RuntimeStats = Omit<ForkerStats, 'runtime'> | { readonly mode: 'spawn' }

const KEPT_AFTER: ReadonlySet<string> = new Set(['script_error', 'syntax_error'])
const LIMIT_OF: Partial<Record<string, LimitName>> = { timeout: 'timeout', result_too_large: 'result', memory_limit: 'memory', pids_limit: 'pids' }
/** Why a sandbox that is not kept is killed, by the limit it hit or the error its call ended with. */
const FATE_OF: Partial<Record<string, DestroyReason>> = {
  timeout: 'timeout', memory: 'memory', pids: 'pids', sandbox_crashed: 'crash', protocol_error: 'crash', shutting_down: 'shutdown'
}

const secondsSince = (began: bigint): number => Number(process.hrtime.bigint() - began) / 1e9

export class Runner {
  private readonly pools = new Map<Language, LanguagePool>()
  private readonly warm: WarmSet
  private readonly live = new Set<Sandbox>()
  /** every sandbox until its limits are released (after its exit: close() awaits its cgroup's removal too) */
  private readonly unreleased = new Set<Sandbox>()
  /** sandboxes between spawn and ready: close() waits for them to be killed */
  private readonly starting = new Set<Promise<Sandbox>>()
  /** Aborted by close(): ends the starts still under way, and refuses new calls. */
  private readonly closing = new AbortController()
  private seq = 0
  private readonly onBackgroundError: (err: Error) => void
  private readonly forkers: Partial<Record<RuntimeName, Forker>>
  /** POOL_MIN: sandboxes each language keeps started ahead of calls */
  private readonly prewarms: number
  /** ACQUIRE_TIMEOUT: how long a call may look for a sandbox, all waits together */
  private readonly acquireTimeoutMs: number
  private readonly observer: RunObserver
  /** python bytecode of code fresh sandboxes compiled, by its text (sandbox/bytecode-cache.ts) */
  readonly bytecode = new BytecodeCache()
  private readonly languageOf = new WeakMap<Sandbox, Language>()
  private readonly layered = new WeakSet<Sandbox>()
  /** the layer each live sandbox of a function with packages has bound */
  private readonly layerDirs = new Map<Sandbox, string>()
  /** starts a sandbox outside the pools: for a function with a layer of packages */
  private readonly dedicated = new Map<Language, (layer: string) => Promise<Sandbox>>()

  constructor (opts: RunnerOptions) {
    const c = opts.config
    this.prewarms = c.poolMin
    this.acquireTimeoutMs = c.acquireTimeoutMs
    const queue = new WaitLimit(c.queueMax)
    this.onBackgroundError = opts.onBackgroundError ?? (() => {})
    const observer = this.observer = opts.observer ?? NO_OBSERVER
    this.warm = new WarmSet({
      maxTotal: c.warmMaxTotal,
      maxPerFunction: c.warmMaxPerFunction,
      idleMs: c.warmIdleMs,
      maxUses: c.warmMaxUses,
      queue,
      waitTimeoutMs: c.acquireTimeoutMs,
      onBackgroundError: (err) => this.onBackgroundError(err),
      onDestroy: (sandbox, reason) => this.destroyed(sandbox, reason)
    })
    const hostUid = sandboxHostUid(c)
    const library = opts.runtimeFiles.zygoteLibrary
    const pipes = pipeMaker(library === null ? null : addonBeside(library), hostUid)
    const specs = new Map<string, RuntimeSpec>()
    this.forkers = {}
    for (const language of LANGUAGES) {
      const runtime = RUNTIME_OF[language]
      const spec = specs.get(runtime) ?? opts.runtimes?.[runtime] ?? runtimeSpec(runtime, opts.runtimeFiles)
      specs.set(runtime, spec)
      const forker = opts.runtimes?.[runtime] === undefined ? opts.forkers?.[runtime] : undefined
      if (forker !== undefined) this.forkers[runtime] = forker
      const start = async (layer?: string, spare = false): Promise<Sandbox> => {
        const id = `${language}-${process.pid}-${++this.seq}`
        const limits = await opts.limits.create(id)
        // Forked from the runtime's zygote while it works; spawned otherwise,
        // and always when the function has a layer of packages to bind.
        const forked = forker?.usable === true && layer === undefined
        const began = process.hrtime.bigint()
        const runtimeSpec = layer === undefined ? spec : { ...spec, binds: [...spec.binds, layerBind(runtime, layer)] }
        const launch = forked
          ? forker.launch(limits, runtime, { precompile: runtime === 'python' && this.bytecode.compiles, spare })
          : spawnLaunch({ runtime: runtimeSpec, hostUid, tmpBytes: c.sandboxTmpBytes, seccompFile: opts.seccompFile, disableUserns: opts.disableUserns, pipes }, limits)
        let sandbox: Sandbox
        try {
          sandbox = await Sandbox.start({
            id,
            runtime,
            limits,
            spawnTimeoutMs: c.spawnTimeoutMs,
            logMaxBytes: c.logMaxBytes,
            resultMaxBytes: c.resultMaxBytes,
            cancel: this.closing.signal,
            bytecode: runtime === 'python' ? this.bytecode : undefined
          }, launch)
        } catch (err) {
          observer.started(language, forked ? 'fork' : 'spawn', secondsSince(began), false)
          throw err
        }
        observer.started(language, forked ? 'fork' : 'spawn', secondsSince(began), true)
        this.languageOf.set(sandbox, language)
        if (this.closed) { // close() already killed the live ones; this one came too late
          await sandbox.destroy()
          throw new HearthError('shutting_down')
        }
        this.live.add(sandbox)
        this.unreleased.add(sandbox)
        void sandbox.released.then(() => this.unreleased.delete(sandbox))
        if (layer !== undefined) this.layerDirs.set(sandbox, layer)
        void sandbox.exited.then(() => {
          this.live.delete(sandbox)
          this.layerDirs.delete(sandbox)
        })
        return sandbox
      }
      const spawn = async (layer?: string, spare = false): Promise<Sandbox> => {
        const starting = start(layer, spare)
        this.starting.add(starting)
        try {
          return await starting
        } finally {
          this.starting.delete(starting)
        }
      }
      this.dedicated.set(language, spawn)
      this.pools.set(language, new LanguagePool({
        language,
        min: c.poolMin,
        max: c.poolMax,
        queue,
        acquireTimeoutMs: c.acquireTimeoutMs,
        spawn: async (spare) => await spawn(undefined, spare),
        onSpawnError: (err, failures) => opts.onSpawnError?.(language, err, failures)
      }))
    }
  }

  async run (req: RunRequest): Promise<RunResult> {
    if (this.closed) throw new HearthError('shutting_down')
    const began = process.hrtime.bigint()
    let start: 'warm' | 'fresh' = 'fresh'
    try {
      const prepared = await prepare(req.language, req.code)
      const pool = this.pools.get(req.language) as LanguagePool
      const groupKey = req.functionKey === undefined ? null : `${req.language}:${req.functionKey}`
      const found = await this.find(pool, groupKey, req.language, req.layer)
      this.observer.waited(req.language, secondsSince(began))
      if (found.sandbox.uses > 0) start = 'warm'
      const result = await this.runIn(req, prepared, pool, groupKey, found)
      this.observer.call(req.language, 'ok', start, secondsSince(began))
      return result
    } catch (err) {
      this.observer.call(req.language, err instanceof HearthError ? err.code : 'internal', start, secondsSince(began))
      throw err
    }
  }

  private async runIn (req: RunRequest, prepared: Prepared, pool: LanguagePool, groupKey: string | null, found: { claim: Claim, sandbox: Sandbox }): Promise<RunResult> {
    const { claim, sandbox } = found
    const warm = sandbox.uses > 0
    let outcome: Outcome | null = null
    let error: HearthError | null = null
    const signal = req.signal
    const onAbort = (): void => this.detach(sandbox.destroy())
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      if (signal?.aborted === true) throw new HearthError('client_closed')
      outcome = await sandbox.run({
        key: prepared.key,
        code: prepared.code,
        input: req.input,
        filename: prepared.filename,
        timeoutMs: req.timeoutMs,
        onLog: req.onLog
      })
    } catch (err) {
      error = err as HearthError
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
    if (signal?.aborted === true) error = new HearthError('client_closed')
    // A limit hit during a call ends the sandbox even when the call succeeded
    // (isolation contract, rule 3), and names the failure when it did not.
    const breach = sandbox.state === 'idle' ? sandbox.breach() : null
    if (breach !== null && error !== null) error = limitError(breach, error)
    const keep = groupKey !== null && breach === null && sandbox.state === 'idle' && (error === null || KEPT_AFTER.has(error.code))
    const limit = breach === 'memory' || breach === 'pids' ? breach : LIMIT_OF[error?.code ?? ''] ?? (outcome?.logsTruncated === true ? 'logs' : null)
    if (limit != null) this.observer.breach(req.language, limit)
    this.release(claim, groupKey, sandbox, pool, keep, FATE_OF[limit ?? error?.code ?? ''] ?? (error === null ? 'used' : 'error'))
    if (error !== null) throw this.explain(error, prepared)
    return { ...typeResult(outcome as Outcome), logsTruncated: (outcome as Outcome).logsTruncated, warm }
  }

  /**
   * Where a call runs: its function's idle sandbox (claim 'sandbox'), else a
   * fresh one from the language pool, bound to the function after the call
   * ('bind') or not ('unbound'). One deadline, ACQUIRE_TIMEOUT from now, covers
   * every wait on the way; QUEUE_MAX counts the waiting calls of both (WaitLimit).
   */
  private async find (pool: LanguagePool, groupKey: string | null, language: Language, layer?: string): Promise<{ claim: Claim, sandbox: Sandbox }> {
    const deadline = Date.now() + this.acquireTimeoutMs
    const claim: Claim = groupKey === null ? { kind: 'unbound' } : await this.claim(groupKey, deadline)
    if (claim.kind === 'sandbox') return { claim, sandbox: claim.sandbox }
    let sandbox: Sandbox
    try {
      sandbox = layer === undefined ? await pool.acquire(deadline) : await this.startWithLayer(language, layer)
    } catch (err) {
      if (claim.kind === 'bind') this.warm.leave(groupKey as string)
      throw err
    }
    if (this.closed) { // handed out by a pool that close() is draining
      if (claim.kind === 'bind') this.warm.leave(groupKey as string)
      this.detach(this.layered.has(sandbox) ? sandbox.destroy() : pool.discard(sandbox))
      throw new HearthError('shutting_down')
    }
    return { claim, sandbox }
  }

  /** A sandbox of its own for a function with packages; marked so that release() never gives it to a pool. */
  private async startWithLayer (language: Language, layer: string): Promise<Sandbox> {
    const sandbox = await (this.dedicated.get(language) as (layer: string) => Promise<Sandbox>)(layer)
    this.layered.add(sandbox)
    return sandbox
  }

  /** The warm set's answer; a RetryClaim (the group waited on emptied) claims again, by the same deadline. */
  private async claim (groupKey: string, deadline: number): Promise<Claim> {
    for (;;) {
      try {
        return await this.warm.claim(groupKey, deadline)
      } catch (err) {
        if (!(err instanceof RetryClaim)) throw err
      }
    }
  }

  /**
   * The one place a sandbox's fate is decided after its call (isolation
   * contract): kept only for its own function (`keep`), else killed.
   * - its function's sandbox, kept: back to the function's idle sandboxes;
   * - a fresh sandbox bound to the function, kept: the pool hands it over to the warm set;
   * - anything else (run-now, a failed call, a sandbox at its use count): killed.
   * The books change now; the teardown and the pool's refill run after the
   * caller's answer is written (a setImmediate): measured, they took 0.4-2.4 ms
   * of a run-now call's 3-5 ms when done first.
   */
  private release (claim: Claim, groupKey: string | null, sandbox: Sandbox, pool: LanguagePool, keep: boolean, fate: DestroyReason): void {
    if (keep && claim.kind !== 'unbound') {
      if (claim.kind === 'bind' && !this.layered.has(sandbox)) this.afterReply(async () => await pool.handOver(sandbox))
      if (this.warm.release(groupKey as string, sandbox)) return
      this.destroyed(sandbox, 'retired')
      this.afterReply(async () => await sandbox.destroy()) // refused (use count reached): release() gave up its place
      return
    }
    this.destroyed(sandbox, fate)
    if (claim.kind !== 'unbound') this.warm.leave(groupKey as string)
    this.afterReply(async () => { if (claim.kind === 'sandbox' || this.layered.has(sandbox)) await sandbox.destroy(); else await pool.discard(sandbox) })
  }

  private destroyed (sandbox: Sandbox, reason: DestroyReason): void {
    const language = this.languageOf.get(sandbox)
    if (language !== undefined) this.observer.destroyed(language, reason)
  }

  /** Sandbox teardown runs off the request path; its failures are reported, never unhandled. */
  private detach (work: Promise<unknown>): void {
    work.catch((err: Error) => this.onBackgroundError(err))
  }

  private afterReply (work: () => Promise<unknown>): void {
    setImmediate(() => this.detach(work()))
  }

  private explain (err: HearthError, prepared: Prepared): HearthError {
    if (err.code !== 'script_error' || prepared.sourceMap === null) return err
    const stack = mapStack(prepared, String(err.details.stack ?? ''))
    return new HearthError(err.code, err.message, { ...err.details, stack })
  }

  stats (): { pools: LanguagePoolStats[], warm: ReturnType<WarmSet['stats']>, sandboxes: number, runtimes: Record<RuntimeName, RuntimeStats> } {
    const runtimes = {} as Record<RuntimeName, RuntimeStats>
    for (const name of new Set(Object.values(RUNTIME_OF))) runtimes[name] = this.forkers[name]?.stats(name) ?? { mode: 'spawn' }
    return {
      pools: [...this.pools.values()].map((p) => p.stats()),
      warm: this.warm.stats(),
      sandboxes: this.live.size,
      runtimes
    }
  }

  /** Layers of packages bound in live sandboxes: not to be evicted. */
  layersInUse (): Set<string> {
    return new Set(this.layerDirs.values())
  }

  /** Calls waiting for a sandbox (in a language pool or a function's warm set). */
  waiting (): number {
    let n = this.warm.stats().waiting
    for (const pool of this.pools.values()) n += pool.stats().waiting
    return n
  }

  /**
   * Able to take work soon: every language has started a sandbox (or, with
   * POOL_MIN=0, starts them on demand) and its last start did not fail. A pool
   * whose sandboxes are all busy is ready (a load balancer must not pull a
   * node at its busiest); a runtime that cannot start is not.
   */
  ready (): boolean {
    return [...this.pools.values()].every((p) => {
      const s = p.stats()
      return (s.spawned > 0 || this.prewarms === 0) && s.consecutiveFailures === 0
    })
  }

  private get closed (): boolean {
    return this.closing.signal.aborted
  }

  /** Kills every sandbox, in use, idle or still starting, and stops the pools (calls still running answer shutting_down); resolves once every sandbox's limits are released. */
  async close (): Promise<void> {
    this.closing.abort()
    for (const pool of this.pools.values()) pool.close()
    this.warm.drainIdle()
    const stopped = new HearthError('shutting_down', 'the daemon stopped before the call finished')
    await Promise.all([...this.unreleased].map(async (s) => await s.destroy(stopped)))
    await Promise.allSettled([...this.starting])
  }
}
