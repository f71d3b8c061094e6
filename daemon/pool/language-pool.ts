// A generic-pool of ready, never-used sandboxes for one language. A sandbox
// taken from it never comes back: it is handed over (alive, to a function's
// warm set) or discarded (killed), and the pool starts another.
import genericPool, { type Pool } from 'generic-pool'
import { setTimeout as sleep } from 'node:timers/promises'
import { HearthError } from '../errors.js'
import type { Sandbox } from '../sandbox/sandbox.js'
import type { WaitLimit } from './wait-limit.js'

export interface LanguagePoolOptions {
  readonly language: string
  readonly min: number
  readonly max: number
  /** QUEUE_MAX, shared with the warm set: counts a call that finds no ready sandbox */
  readonly queue: WaitLimit
  /** a backstop: each call's own deadline (acquire's argument) comes first */
  readonly acquireTimeoutMs: number
  /** `spare`: no call waits for the sandbox (a refill, or the pool's minimum): it may prepare longer before it is ready */
  readonly spawn: (spare: boolean) => Promise<Sandbox>
  readonly onSpawnError?: (err: Error, failures: number) => void
}

export interface LanguagePoolStats {
  readonly language: string
  readonly ready: number
  readonly starting: number
  readonly borrowed: number
  readonly waiting: number
  readonly spawned: number
  readonly consecutiveFailures: number
  readonly lastError: string | null
}

const BACKOFF_BASE_MS = 100
const BACKOFF_MAX_MS = 10_000

export class LanguagePool {
  readonly language: string
  private readonly pool: Pool<Sandbox>
  private readonly opts: LanguagePoolOptions
  private failures = 0
  /** when the last failure was counted (performance.now()) */
  private failedAt = -Infinity
  private lastError: Error | null = null
  private spawned = 0
  private readonly closing = new AbortController()
  /** taken sandboxes that live on with a new owner: generic-pool's destroy must not kill them */
  private readonly handedOver = new WeakSet<Sandbox>()

  constructor (opts: LanguagePoolOptions) {
    this.opts = opts
    this.language = opts.language
    this.pool = genericPool.createPool<Sandbox>({
      create: async () => await this.create(),
      // A handed-over sandbox leaves the pool's books without dying; every other one is killed.
      destroy: async (sandbox) => { if (!this.handedOver.has(sandbox)) await sandbox.destroy() },
      validate: async (sandbox) => sandbox.state === 'idle'
    }, {
      min: opts.min,
      max: opts.max,
      // QUEUE_MAX is counted once, by the runner, over every call waiting anywhere.
      // Without it, acquire() never settles while create() keeps failing
      // (generic-pool issues #175, #183, #273).
      acquireTimeoutMillis: opts.acquireTimeoutMs,
      testOnBorrow: true,
      autostart: true
    })
    this.pool.on('factoryCreateError', () => {}) // counted in create()
  }

  /**
   * generic-pool calls create() again at once after a failure; backing off here is
   * what keeps a runtime that cannot start from becoming a spawn loop.
   */
  private async create (): Promise<Sandbox> {
    if (this.failures > 0) {
      const delay = Math.min(BACKOFF_BASE_MS * 2 ** (this.failures - 1), BACKOFF_MAX_MS)
      try {
        await sleep(delay, undefined, { ref: false, signal: this.closing.signal })
      } catch {} // close() cut the wait short
    }
    // After close(), generic-pool still calls create() for callers it has queued
    // and calls it again at once on every rejection: rejecting here would spin.
    // Those callers were already answered by acquire(); the request is parked.
    if (this.closed) return await new Promise<never>(() => {})
    const begun = performance.now()
    try {
      // A call waiting now takes this sandbox as soon as it is ready (the
      // pool hands them out in order); none waiting: it is a spare. Before
      // the constructor has assigned this.pool (autostart fills the
      // minimum from inside it), nobody can be waiting.
      const waiting = (this.pool as Pool<Sandbox> | undefined)?.pending ?? 0
      const sandbox = await this.opts.spawn(waiting === 0)
      this.spawned++
      this.failures = 0
      this.lastError = null
      return sandbox
    } catch (err) {
      // A start the daemon's stop cut short is no failure: not counted, not reported.
      if (this.closed) throw err
      // Starts in flight together fail together (a zygote that dies takes
      // every start it was forking): one more failure in a row, not one each,
      // or one incident backs the pool off for seconds (2^n x 100 ms). A start
      // begun after the last counted failure, and failing too, counts.
      if (begun >= this.failedAt) {
        this.failures++
        this.failedAt = performance.now()
      }
      this.lastError = err as Error
      this.opts.onSpawnError?.(err as Error, this.failures)
      throw err
    }
  }

  /** A ready sandbox by `deadline` (a Date.now() time), else queue_timeout, or runtime_unavailable while starts fail. */
  async acquire (deadline: number): Promise<Sandbox> {
    if (this.closed) throw new HearthError('shutting_down')
    const done = this.pool.available > 0 ? () => {} : this.opts.queue.enter()
    const acquiring = this.pool.acquire()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error('deadline')), Math.max(0, deadline - Date.now()))
    })
    // close() answers queued callers at once. A promise of this call's own, its
    // listener removed below: racing one promise that lives as long as the pool
    // left a reaction on it per call, each holding the sandbox that call got
    // (seen: ~12 KB of heap per run-now call, 316 MB after 27,000).
    let onClose = (): void => {}
    const closed = new Promise<never>((_resolve, reject) => {
      onClose = () => reject(new HearthError('shutting_down'))
      this.closing.signal.addEventListener('abort', onClose, { once: true })
    })
    try {
      return await Promise.race([acquiring, closed, late])
    } catch (err) {
      // generic-pool cannot cancel a queued caller: what it hands over later goes
      // back unused (or is killed, after close()).
      acquiring.then(async (sandbox) => { if (this.closed) await this.discard(sandbox); else await this.pool.release(sandbox) }, () => {})
      if (this.closed) throw new HearthError('shutting_down')
      if (this.lastError !== null) {
        throw new HearthError('runtime_unavailable', `${this.language} sandboxes cannot start: ${this.lastError.message}`)
      }
      if ((err as Error).message !== 'deadline' && !/ResourceRequest timed out/.test((err as Error).message)) throw err
      throw new HearthError('queue_timeout', `no ${this.language} sandbox became free in time (ACQUIRE_TIMEOUT: ${this.opts.acquireTimeoutMs} ms)`)
    } finally {
      clearTimeout(timer)
      this.closing.signal.removeEventListener('abort', onClose)
      done()
    }
  }

  /** A taken sandbox lives on with a new owner (a function's warm set); the pool starts another. */
  async handOver (sandbox: Sandbox): Promise<void> {
    this.handedOver.add(sandbox)
    if (this.pool.isBorrowedResource(sandbox)) await this.pool.destroy(sandbox)
  }

  /** A taken sandbox is killed (run-now, a failed call, a shutdown); the pool starts another. */
  async discard (sandbox: Sandbox): Promise<void> {
    if (this.pool.isBorrowedResource(sandbox)) await this.pool.destroy(sandbox)
    else await sandbox.destroy()
  }

  stats (): LanguagePoolStats {
    return {
      language: this.language,
      ready: this.pool.available,
      starting: Math.max(0, this.pool.size - this.pool.available - this.pool.borrowed),
      borrowed: this.pool.borrowed,
      waiting: this.pool.pending,
      spawned: this.spawned,
      consecutiveFailures: this.failures,
      lastError: this.lastError?.message ?? null
    }
  }

  /**
   * Stops handing out sandboxes and answers queued callers with shutting_down.
   * Killing sandboxes (idle, busy, or finishing their start) is the owner's job:
   * generic-pool's drain() would wait for queued callers it can no longer serve.
   */
  close (): void {
    this.closing.abort()
  }

  private get closed (): boolean {
    return this.closing.signal.aborted
  }
}
