// Per-key quotas, enforced across every daemon that shares the Redis:
// - a request rate, a token bucket (`rate_per_second` refill, `burst` size) made
//   of rate-limiter-flexible's BurstyRateLimiter over two RateLimiterRedis;
// - calls in flight (`max_concurrency`): leases in a Redis sorted set, each with
//   an expiry, so that a daemon killed mid-call frees its lease in time.
// While Redis is unreachable both degrade to per-daemon limits of the same size
// (the rate limiters' insurance limiters, an in-memory count), said in the logs.
import { randomUUID } from 'node:crypto'
import type { RedisClient } from '../store/connection.js'
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible'
import type { Principal } from '../auth/index.js'
import { HearthError } from '../errors.js'
import { PREFIX } from '../store/keys.js'

const LEASE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`

type LeaseRedis = RedisClient & { hearthLease: (key: string, now: number, max: number, expiry: number, member: string, ttl: number) => Promise<number> }

export interface QuotaOptions {
  /** how long a lease outlives its call's start: TIMEOUT_SCRIPT + ACQUIRE_TIMEOUT + a margin */
  readonly leaseMs: number
  readonly warn: (msg: string, fields?: Record<string, unknown>) => void
}

export class Quotas {
  private readonly redis: LeaseRedis
  private readonly limiters = new Map<string, BurstyRateLimiter>()
  private readonly local = new Map<string, number>() // per-daemon calls in flight, while Redis is away
  private degraded = false

  constructor (redis: RedisClient, private readonly opts: QuotaOptions) {
    redis.defineCommand('hearthLease', { numberOfKeys: 1, lua: LEASE })
    this.redis = redis as LeaseRedis
  }

  /** Counts one request of the key against its rate: rate_limited with Retry-After past it. */
  async request (p: Principal): Promise<void> {
    const { ratePerSecond: rate, burst } = p.quotas
    if (p.id === null || rate === null) return
    try {
      await this.limiter(rate, burst ?? 1).consume(p.id)
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err
      const retry = Math.max(1, Math.ceil(err.msBeforeNext / 1000))
      throw new HearthError('rate_limited', `this key may make ${rate} requests per second (burst ${burst ?? 1})`, { retry_after: retry })
    }
  }

  /** Takes a place among the key's calls in flight; the returned function gives it back. */
  async call (p: Principal): Promise<() => void> {
    const max = p.quotas.maxConcurrency
    if (p.id === null || max === null) return () => {}
    const key = `${PREFIX}quota:calls:${p.id}`
    const member = randomUUID()
    const now = Date.now()
    let granted: boolean
    let local = false
    try {
      granted = await this.redis.hearthLease(key, now, max, now + this.opts.leaseMs, member, this.opts.leaseMs) === 1
      this.recovered()
    } catch (err) {
      this.degrade(err as Error)
      local = true
      granted = (this.local.get(p.id) ?? 0) < max
    }
    if (!granted) throw new HearthError('concurrency_limited', `this key may have ${max} calls in flight`, { retry_after: 1 })
    if (local) {
      const id = p.id
      this.local.set(id, (this.local.get(id) ?? 0) + 1)
      return () => { this.local.set(id, (this.local.get(id) ?? 1) - 1) }
    }
    return () => { this.redis.zrem(key, member).catch(() => {}) } // else the lease expires by itself
  }

  private limiter (rate: number, burst: number): BurstyRateLimiter {
    const id = `${rate}:${burst}`
    let limiter = this.limiters.get(id)
    if (limiter === undefined) {
      // `rate` tokens a second (one every 1/rate s when rate < 1), plus a bucket of
      // `burst` that refills at the same rate.
      const points = Math.max(1, Math.round(rate))
      const every = Math.max(1, Math.round(points / rate))
      const refill = Math.max(1, Math.ceil(burst / rate))
      const redis = (keyPrefix: string, pts: number, duration: number): RateLimiterRedis => new RateLimiterRedis({
        storeClient: this.redis,
        keyPrefix: `${PREFIX}quota:${keyPrefix}:${id}`,
        points: pts,
        duration,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new RateLimiterMemory({ points: pts, duration })
      })
      limiter = new BurstyRateLimiter(redis('rate', points, every), redis('burst', burst, refill))
      this.limiters.set(id, limiter)
    }
    if (this.redis.status !== 'ready') this.degrade(new Error(`Redis connection is ${this.redis.status}`))
    else this.recovered()
    return limiter
  }

  private degrade (err: Error): void {
    if (this.degraded) return
    this.degraded = true
    this.opts.warn('Redis is unreachable: per-key quotas are enforced per daemon until it is back', { err: err.message })
  }

  private recovered (): void {
    if (!this.degraded) return
    this.degraded = false
    this.opts.warn('Redis is back: per-key quotas are shared by every daemon again')
  }
}
