// Callbacks: when an async call ends, its status document is POSTed to its
// callback_url, signed (X-Hearth-Signature: sha256=<hex HMAC-SHA256 of the
// body with CALLBACK_SECRET>), retried with exponential backoff on network
// errors and 5xx up to CALLBACK_MAX_ATTEMPTS; every attempt is recorded on
// the call. Redirects are not followed (they could lead anywhere).
// Sent by the daemon that ended the call; a daemon that dies while retrying
// takes the remaining attempts with it (README: async guarantees).
import { createHmac } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type { LookupFunction } from 'node:net'
import { callKey } from './keys.js'
import { documentOf, type CallStore } from './calls.js'
import type { CallbackPolicy, Target } from './callback-policy.js'

export interface CallbackAttempt {
  at: string
  status?: number
  error?: string
}

export interface CallbackOptions {
  readonly calls: CallStore
  readonly policy: CallbackPolicy
  readonly secret: string
  readonly maxAttempts: number
  /** the first retry's delay; doubled each time, at most a minute */
  readonly baseDelayMs?: number
  readonly timeoutMs?: number
  readonly observer?: { callback: (outcome: 'delivered' | 'failed' | 'refused') => void }
  readonly warn: (msg: string, fields?: Record<string, unknown>) => void
}

export function sign (secret: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex')
}

export class Callbacks {
  private readonly o: CallbackOptions
  private readonly inFlight = new Set<Promise<void>>()
  private readonly sleepers = new Set<() => void>()
  private stopped = false

  constructor (opts: CallbackOptions) {
    this.o = opts
  }

  /** Sends call `id`'s document to `url`, in the background. */
  deliver (id: string, url: string): void {
    const p = this.attempts(id, url).catch((err: Error) => this.o.warn('callback failed', { call: id, err: err.message }))
    this.inFlight.add(p)
    void p.finally(() => this.inFlight.delete(p))
  }

  /** No more retries; waits for the attempts in flight. */
  async stop (): Promise<void> {
    this.stopped = true
    for (const wake of this.sleepers) wake()
    await Promise.allSettled([...this.inFlight])
  }

  private async attempts (id: string, raw: string): Promise<void> {
    const redis = this.o.calls.redis
    const record = await redis.hgetall(callKey(id))
    if (record.status === undefined) return
    const { callback: _, ...doc } = documentOf(id, record)
    const body = JSON.stringify(doc)
    const log: CallbackAttempt[] = []
    let delay = this.o.baseDelayMs ?? 1000
    for (let n = 1; n <= this.o.maxAttempts && !this.stopped; n++) {
      const attempt: CallbackAttempt = { at: new Date().toISOString() }
      let retry = false
      try {
        const target = await this.o.policy.target(this.o.policy.parse(raw))
        attempt.status = await this.post(target, id, body)
        retry = attempt.status >= 500
        if (attempt.status >= 300 && !retry) attempt.error = attempt.status < 400 ? 'redirects are not followed' : 'refused by the receiver'
      } catch (err) {
        attempt.error = (err as Error).message
        retry = !/CALLBACK_ALLOW|callback_url/.test(attempt.error) // a refused host stays refused
      }
      log.push(attempt)
      const delivered = attempt.status !== undefined && attempt.status < 300
      this.o.observer?.callback(delivered ? 'delivered' : retry ? 'failed' : 'refused')
      // HSET keeps the record's TTL; a record that expired meanwhile is not brought back.
      if (await redis.exists(callKey(id)) === 1) await redis.hset(callKey(id), 'callback', JSON.stringify({ delivered, attempts: log }))
      if (delivered || !retry) return
      await this.pause(delay)
      delay = Math.min(delay * 2, 60_000)
    }
  }

  /** A backoff wait that stop() cuts short. */
  private async pause (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const wake = (): void => { clearTimeout(timer); this.sleepers.delete(wake); resolve() }
      const timer = setTimeout(wake, ms)
      this.sleepers.add(wake)
    })
  }

  private async post (target: Target, id: string, body: string): Promise<number> {
    const lib = target.url.protocol === 'https:' ? https : http
    // The checked address, whatever the name resolves to now.
    const pinned: LookupFunction = (_host, opts, cb) => {
      if ((opts as { all?: boolean }).all === true) (cb as unknown as (e: null, a: Array<{ address: string, family: number }>) => void)(null, [{ address: target.address, family: target.family }])
      else cb(null, target.address, target.family)
    }
    return await new Promise((resolve, reject) => {
      const req = lib.request(target.url, {
        method: 'POST',
        lookup: pinned,
        timeout: this.o.timeoutMs ?? 10_000,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          'User-Agent': 'hearth',
          'X-Hearth-Call-Id': id,
          'X-Hearth-Signature': sign(this.o.secret, body)
        }
      }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
        res.on('error', reject)
      })
      req.on('timeout', () => req.destroy(new Error('no answer in time')))
      req.on('error', reject)
      req.end(body)
    })
  }
}
