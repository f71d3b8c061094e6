// A generic-pool of ready, never-used sandboxes for one language.
import genericPool, { type Pool } from 'generic-pool'
import { setTimeout as sleep } from 'node:timers/promises'
import { HearthError } from '../errors.js'
import type { Sandbox } from '../sandbox/sandbox.js'

export interface LanguagePoolOptions {
  readonly language: string
  readonly min: number
  readonly max: number
  readonly queueMax: number
  readonly acquireTimeoutMs: number
  readonly spawn: () => Promise<Sandbox>
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
  private lastError: Error | null = null
  private spawned = 0
  private readonly closing = new AbortController()
  /** rejects when close() is called: queued callers are answered at once */
  private readonly closedSignal = new Promise<never>((_resolve, reject) => {
    this.closing.signal.addEventListener('abort', () => reject(new HearthError('shutting_down')), { once: true })
  })

  constructor (opts: LanguagePoolOptions) {
    this.opts = opts
    this.language = opts.language
    this.pool = genericPool.createPool<Sandbox>({
      create: async () => await this.create(),
      // A sandbox that someone adopted (a function's warm set) leaves the pool's
      // books without dying; every other one is killed.
      destroy: async (sandbox) => { if (!sandbox.adopted) await sandbox.destroy() },
      validate: async (sandbox) => sandbox.state === 'idle'
    }, {
      min: opts.min,
      max: opts.max,
      maxWaitingClients: opts.queueMax,
      // Without it, acquire() never settles while create() keeps failing
      // (generic-pool issues #175, #183, #273).
      acquireTimeoutMillis: opts.acquireTimeoutMs,
      testOnBorrow: true,
      autostart: true
    })
    this.pool.on('factoryCreateError', () => {}) // counted in create()
    this.closedSignal.catch(() => {}) // only acquire() listens
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
    try {
      const sandbox = await this.opts.spawn()
      this.spawned++
      this.failures = 0
      this.lastError = null
      return sandbox
    } catch (err) {
      this.failures++
      this.lastError = err as Error
      this.opts.onSpawnError?.(err as Error, this.failures)
      throw err
    }
  }

  async acquire (): Promise<Sandbox> {
    if (this.closed) throw new HearthError('shutting_down')
    const acquiring = this.pool.acquire()
    try {
      return await Promise.race([acquiring, this.closedSignal])
    } catch (err) {
      if (this.closed) {
        // generic-pool cannot cancel a queued caller: whatever it hands over later goes back.
        acquiring.then(async (sandbox) => await this.retire(sandbox), () => {})
        throw new HearthError('shutting_down')
      }
      const message = (err as Error).message
      if (/max waitingClients/.test(message)) {
        throw new HearthError('overloaded', `more than ${this.opts.queueMax} calls are waiting for a ${this.language} sandbox`)
      }
      if (this.lastError !== null) {
        throw new HearthError('runtime_unavailable', `${this.language} sandboxes cannot start: ${this.lastError.message}`)
      }
      throw new HearthError('queue_timeout', `no ${this.language} sandbox became free within ${this.opts.acquireTimeoutMs} ms`)
    }
  }

  /** Gives up a borrowed sandbox for good: killed, or kept by its adopter. The pool refills. */
  async retire (sandbox: Sandbox): Promise<void> {
    if (this.pool.isBorrowedResource(sandbox)) await this.pool.destroy(sandbox)
    else if (!sandbox.adopted) await sandbox.destroy()
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
