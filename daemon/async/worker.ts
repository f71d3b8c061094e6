// Takes queued calls off the stream, as many as this daemon has room for, and
// runs them through the same runner as synchronous calls (same pools, limits
// and isolation contract). At least once: a call is acknowledged in the same
// script that stores its end; one whose daemon died stays pending and is
// claimed by another after ASYNC_CLAIM_IDLE (XAUTOCLAIM). A daemon confirms
// the calls it is running every ASYNC_CLAIM_IDLE / 3 (XCLAIM of its own
// entries resets their idle time), so a long call is never taken from a live
// daemon that can still reach Redis.
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { RedisClient } from '../store/connection.js'
import type { Language } from '../config.js'
import { asHearthError, HearthError } from '../errors.js'
import { resultBody } from '../result.js'
import type { CallerGone, RunRequest, RunResult } from '../pool/runner.js'
import { CANCELLED, type CallStore } from './calls.js'
import { CANCEL_CHANNEL, callKey, GROUP, QUEUE } from './keys.js'

export interface AsyncObserver {
  /** a call this daemon started; `claimed`: taken over from a daemon that stopped confirming it */
  taken: (claimed: boolean) => void
  finished: (status: 'done' | 'failed') => void
}

export interface Finished {
  readonly id: string
  readonly status: 'done' | 'failed'
  readonly callbackUrl?: string
}

export interface WorkerOptions {
  readonly calls: CallStore
  /** a connection of its own: XREADGROUP BLOCK holds it */
  readonly reader: RedisClient
  /** a connection of its own, subscribed to the cancel channel */
  readonly subscriber: RedisClient
  readonly run: (req: RunRequest) => Promise<RunResult>
  /** synchronous calls are waiting for a sandbox: take no new work (they have priority) */
  readonly busy: () => boolean
  /** a stored version's code, and its packages' layer when it has one */
  readonly codeOf: (path: string, version: number) => Promise<{ code: string, layer?: string, release?: () => void }>
  readonly concurrency: number
  readonly claimIdleMs: number
  readonly maxAttempts: number
  readonly redisTimeoutMs: number
  readonly observer?: AsyncObserver
  /** told of every call this daemon ends (callbacks go out from here) */
  readonly onFinished?: (call: Finished) => void
  readonly warn: (msg: string, fields?: Record<string, unknown>) => void
}

const ABANDONED = (max: number): string => JSON.stringify({ code: 'abandoned', message: `the call was started ${max} times (ASYNC_MAX_ATTEMPTS) and its daemon never finished it` })

/** The CallerGone of one async call: aborted by a cancel. */
class Cancel implements CallerGone {
  aborted = false
  private listeners: Array<() => void> = []
  abort (): void {
    if (this.aborted) return
    this.aborted = true
    for (const l of this.listeners.splice(0)) l()
  }

  addEventListener (_type: 'abort', listener: () => void): void { this.listeners.push(listener) }
  removeEventListener (_type: 'abort', listener: () => void): void { this.listeners = this.listeners.filter((l) => l !== listener) }
}

interface Running { readonly id: string, readonly cancel: Cancel, readonly done: Promise<void> }

const pairs = (flat: string[]): Record<string, string> => {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string
  return out
}

export class AsyncWorker {
  readonly name = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
  private readonly o: WorkerOptions
  private readonly running = new Map<string, Running>() // by stream entry
  private stopped = false
  private wake: (() => void) | null = null
  private timers: NodeJS.Timeout[] = []
  private loopDone: Promise<void> = Promise.resolve()

  constructor (opts: WorkerOptions) {
    this.o = opts
  }

  start (): void {
    if (this.o.concurrency === 0) return // ASYNC_CONCURRENCY=0: this daemon queues calls, others run them
    this.o.subscriber.on('message', (channel: string, id: string) => {
      if (channel === CANCEL_CHANNEL) this.cancelLocal(id)
    })
    const subscribe = (): void => { this.o.subscriber.subscribe(CANCEL_CHANNEL).catch(() => {}) }
    this.o.subscriber.on('ready', subscribe)
    if (this.o.subscriber.status === 'ready') subscribe()
    const every = (ms: number, fn: () => Promise<void>): void => {
      const t = setInterval(() => { fn().catch((err: Error) => this.o.warn('async: ' + err.message)) }, ms)
      t.unref()
      this.timers.push(t)
    }
    every(Math.max(50, this.o.claimIdleMs / 4), async () => await this.claim())
    every(Math.max(50, this.o.claimIdleMs / 3), async () => await this.confirm())
    this.loopDone = this.loop()
  }

  get runningCount (): number {
    return this.running.size
  }

  /** Takes no more work; waits up to graceMs for the calls running. Those still running stay pending for another daemon. */
  async stop (graceMs: number): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearInterval(t)
    this.wake?.()
    this.o.reader.disconnect() // ends a blocked XREADGROUP
    await this.loopDone
    const all = Promise.all([...this.running.values()].map(async (r) => await r.done))
    await Promise.race([all, new Promise((resolve) => setTimeout(resolve, graceMs).unref())])
    this.o.subscriber.disconnect()
  }

  private free (): number {
    return this.o.concurrency - this.running.size
  }

  private async loop (): Promise<void> {
    const blockMs = Math.max(100, Math.min(2000, Math.floor(this.o.redisTimeoutMs / 2)))
    let failing = false
    while (!this.stopped) {
      // No room, or sync calls waiting, or the connection not (yet, again) up:
      // look again after a moment, or at once when a call ends or stop() is called.
      if (this.free() <= 0 || this.o.busy() || this.o.reader.status !== 'ready') {
        await this.pause(200)
        continue
      }
      try {
        const reply = await this.o.reader.xreadgroup('GROUP', GROUP, this.name, 'COUNT', this.free(), 'BLOCK', blockMs, 'STREAMS', QUEUE, '>') as Array<[string, Array<[string, string[]]>]> | null
        failing = false
        for (const [, entries] of reply ?? []) {
          for (const [entry, fields] of entries) this.take(entry, pairs(fields).id ?? '', false)
        }
      } catch (err) {
        if (this.stopped) break
        const message = (err as Error).message
        if (/NOGROUP/.test(message)) {
          await this.o.calls.ensureGroup().catch(() => {})
          continue
        }
        if (!failing) this.o.warn('async: cannot read the queue; retrying', { err: message })
        failing = true
        await this.pause(1000)
      }
    }
  }

  private async pause (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      this.wake = resolve
      setTimeout(resolve, ms).unref()
    })
  }

  /** Calls pending on daemons that stopped confirming them, taken over. */
  private async claim (): Promise<void> {
    if (this.stopped || this.free() <= 0 || this.o.busy() || this.o.calls.redis.status !== 'ready') return
    const reply = await this.o.calls.redis.xautoclaim(QUEUE, GROUP, this.name, this.o.claimIdleMs, '0-0', 'COUNT', this.free()) as [string, Array<[string, string[] | null]>]
    for (const [entry, fields] of reply[1]) {
      if (fields === null || this.running.has(entry)) continue // deleted meanwhile; or ours
      this.take(entry, pairs(fields).id ?? '', true)
    }
  }

  /** Resets the idle time of the calls running here, and catches a cancel whose message was missed. */
  private async confirm (): Promise<void> {
    if (this.running.size === 0 || this.o.calls.redis.status !== 'ready') return
    const entries = [...this.running.keys()]
    await this.o.calls.redis.call('XCLAIM', QUEUE, GROUP, this.name, 0, ...entries, 'JUSTID')
    for (const r of this.running.values()) {
      if (await this.o.calls.redis.hget(callKey(r.id), 'cancel') === '1') r.cancel.abort()
    }
  }

  private cancelLocal (id: string): void {
    for (const r of this.running.values()) if (r.id === id) r.cancel.abort()
  }

  private take (entry: string, id: string, claimed: boolean): void {
    const cancel = new Cancel()
    const done = this.execute(entry, id, cancel, claimed)
      .catch((err: Error) => this.o.warn('async: a call failed to run', { call: id, err: err.message }))
      .finally(() => {
        this.running.delete(entry)
        this.wake?.()
      })
    this.running.set(entry, { id, cancel, done })
  }

  private async execute (entry: string, id: string, cancel: Cancel, claimed: boolean): Promise<void> {
    const started = await this.o.calls.start(id, entry, this.name, this.o.maxAttempts, ABANDONED(this.o.maxAttempts))
    if (started[0] === 'abandoned' || started[0] === 'cancelled') {
      this.ended({ id, status: 'failed' }, await this.o.calls.callbackUrl(id))
      return
    }
    if (started[0] !== 'run') return // gone, or finished by a cancel meanwhile
    this.o.observer?.taken(claimed)
    const r = pairs(started.slice(2))
    const logs: string[] = []
    let fields: string[]
    try {
      const version = r.function === undefined ? undefined : Number(r.version)
      const stored: { code: string, layer?: string, release?: () => void } = r.function === undefined ? { code: r.code ?? '' } : await this.o.codeOf(r.function, version as number)
      const result = await this.o.run({
        layer: stored.layer,
        language: r.language as Language,
        code: stored.code,
        input: r.input ?? 'null',
        timeoutMs: Number(r.timeout),
        functionKey: r.function === undefined ? undefined : `${r.function}@${version as number}`,
        signal: cancel,
        onLog: (_stream, line) => logs.push(line)
      }).finally(() => stored.release?.())
      fields = ['status', 'done', 'finished', String(Date.now()), 'result', resultBody(result), 'logs_truncated', result.logsTruncated ? '1' : '0']
    } catch (err) {
      const e = cancel.aborted ? null : asHearthError(err)
      // Not the call's fault: left pending, run again by whoever claims it.
      if (e !== null && ['shutting_down', 'store_unavailable', 'store_outcome_unknown'].includes(e.code)) return
      fields = ['status', 'failed', 'finished', String(Date.now()), 'error', e === null ? CANCELLED : JSON.stringify(e.toJSON().error)]
    }
    const status = fields[1] as 'done' | 'failed'
    if (await this.complete(id, entry, logs.join('\n'), fields)) this.ended({ id, status }, r.callback_url ?? null)
  }

  /** Stores the end, retried while Redis is away, up to ASYNC_CLAIM_IDLE (after which another daemon may run the call again). */
  private async complete (id: string, entry: string, logs: string, fields: string[]): Promise<boolean> {
    const until = Date.now() + this.o.claimIdleMs
    for (let wait = 100; ; wait = Math.min(wait * 2, 2000)) {
      try {
        return await this.o.calls.complete(id, entry, this.name, logs, fields)
      } catch (err) {
        if (Date.now() + wait > until) throw new HearthError('store_unavailable', `cannot store the end of call ${id}: ${(err as Error).message}`)
        await new Promise((resolve) => setTimeout(resolve, wait))
      }
    }
  }

  private ended (call: Finished, callbackUrl: string | null): void {
    this.o.observer?.finished(call.status)
    this.o.onFinished?.({ ...call, ...(callbackUrl === null || callbackUrl === '' ? {} : { callbackUrl }) })
  }
}
