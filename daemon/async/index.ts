// Asynchronous calls: queued on a Redis stream, run by whichever daemon has
// room (worker.ts), their ends stored with their results and sent to
// callbacks. This is the one object the rest of the daemon holds.
import { duplicate, type RedisClient } from '../store/connection.js'
import type { AsyncConfig } from '../config.js'
import type { RunRequest, RunResult } from '../pool/runner.js'
import { CallbackPolicy } from './callback-policy.js'
import { Callbacks } from './callbacks.js'
import { CallStore, type CallRequest } from './calls.js'
import { AsyncWorker, type AsyncObserver } from './worker.js'

export { CALL_ID } from './keys.js'
export { documentOf, type CallDocument, type CallRequest } from './calls.js'
export { sign } from './callbacks.js'
export type { AsyncObserver } from './worker.js'

export interface AsyncOptions {
  readonly config: AsyncConfig
  readonly redis: RedisClient
  readonly redisTimeoutMs: number
  readonly run: (req: RunRequest) => Promise<RunResult>
  readonly busy: () => boolean
  readonly codeOf: (path: string, version: number) => Promise<{ code: string, layer?: string, release?: () => void }>
  readonly observer?: AsyncObserver & { callback: (outcome: 'delivered' | 'failed' | 'refused') => void }
  readonly warn: (msg: string, fields?: Record<string, unknown>) => void
}

export class AsyncCalls {
  readonly calls: CallStore
  readonly policy: CallbackPolicy
  readonly config: AsyncConfig
  private readonly worker: AsyncWorker
  private readonly callbacks: Callbacks
  private readonly warn: AsyncOptions['warn']

  constructor (o: AsyncOptions) {
    this.config = o.config
    this.warn = o.warn
    this.calls = new CallStore(o.redis, { timeoutMs: o.redisTimeoutMs, resultTtlSeconds: o.config.resultTtlSeconds })
    this.policy = new CallbackPolicy(o.config.callbackAllow)
    this.callbacks = new Callbacks({
      calls: this.calls,
      policy: this.policy,
      secret: o.config.callbackSecret,
      maxAttempts: o.config.callbackMaxAttempts,
      baseDelayMs: 500,
      observer: o.observer,
      warn: o.warn
    })
    const reader = duplicate(o.redis)
    const subscriber = duplicate(o.redis)
    // The same server as the first connection, whose errors are reported.
    for (const c of [reader, subscriber]) c.on('error', () => {})
    this.worker = new AsyncWorker({
      calls: this.calls,
      reader,
      subscriber,
      run: o.run,
      busy: o.busy,
      codeOf: o.codeOf,
      concurrency: o.config.concurrency,
      claimIdleMs: o.config.claimIdleMs,
      maxAttempts: o.config.maxAttempts,
      redisTimeoutMs: o.redisTimeoutMs,
      observer: o.observer,
      onFinished: (call) => { if (call.callbackUrl !== undefined) this.callbacks.deliver(call.id, call.callbackUrl) },
      warn: o.warn
    })
  }

  /** Joins the consumer group (made when missing) and starts taking calls. */
  async start (): Promise<void> {
    await this.calls.ensureGroup().catch(() => {}) // Redis away: the worker makes it when it can
    this.worker.start()
  }

  async enqueue (req: CallRequest): Promise<string> {
    return await this.calls.enqueue(req, this.config.queueMax)
  }

  /**
   * Cancels (calls.ts). A call still queued ends here, not in a worker: its
   * callback is sent from here, as a worker sends an ended call's. The cancel
   * is done whatever befalls the callback's lookup (warned).
   */
  async cancel (id: string): Promise<string> {
    const found = await this.calls.cancel(id)
    if (found === 'cancelled') {
      await this.calls.callbackUrl(id).then((url) => {
        if (url !== null) this.callbacks.deliver(id, url)
      }, (err: Error) => this.warn('the callback of a call cancelled while queued is not sent: its address could not be read', { call: id, err: err.message }))
    }
    return found
  }

  get running (): number {
    return this.worker.runningCount
  }

  /** Takes no more calls; waits up to graceMs for those running and for callbacks in flight. */
  async stop (graceMs: number): Promise<void> {
    await this.worker.stop(graceMs)
    await this.callbacks.stop()
  }
}
