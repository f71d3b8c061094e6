// Prometheus metrics (prom-client): one registry per daemon. The runner and the
// HTTP front report to it (it is their RunObserver and request hook); gauges
// are read from their stats when scraped. No label takes values from users'
// data: routes are patterns, outcomes error codes, never a function's path.
import client from 'prom-client'
import type { Language } from '../config.js'
import type { DestroyReason, LimitName, RunObserver } from '../pool/observer.js'

export interface PoolGauges {
  readonly pools: ReadonlyArray<{ readonly language: string, readonly ready: number, readonly starting: number, readonly borrowed: number, readonly waiting: number }>
  readonly warm: { readonly sandboxes: number, readonly idle: number, readonly waiting: number }
  readonly sandboxes: number
  /** how each runtime's fresh sandboxes start now (Runner.stats: `zygote`, or `spawn`) */
  readonly runtimes?: Readonly<Record<string, { readonly mode: string }>>
}

export interface MetricsSources {
  readonly pools: () => PoolGauges
  readonly redisUp: () => boolean
  /** async calls queued or running on every daemon (the stream's length); null when Redis does not answer */
  readonly asyncQueued?: () => Promise<number | null>
  readonly asyncRunning?: () => number
  /** hearth_build_info's labels */
  readonly build: Readonly<Record<string, string>>
}

// Calls take from a millisecond (warm) to TIMEOUT_SCRIPT.
const CALL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const START_BUCKETS = [0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2.5, 10]
/**
 * How often prom-client's nodejs_eventloop_lag_* histogram samples the event
 * loop (monitorEventLoopDelay: a timer in the loop). Its default, 10 ms, woke
 * an idle daemon 100 times a second, ~1.3 % of a core on the development VM
 * (each wake-up of a halted virtual CPU costs). 100 ms: 10 a second, as
 * Redis's own `hz`.
 */
export const EVENT_LOOP_SAMPLE_MS = 100

export class Metrics implements RunObserver {
  readonly registry = new client.Registry()
  private readonly requests: client.Counter<'route' | 'method' | 'status'>
  private readonly requestSeconds: client.Histogram<'route'>
  private readonly calls: client.Counter<'language' | 'outcome' | 'start'>
  private readonly callSeconds: client.Histogram<'language' | 'start'>
  private readonly startSeconds: client.Histogram<'language' | 'mode'>
  private readonly startFailures: client.Counter<'language' | 'mode'>
  private readonly destroyedTotal: client.Counter<'language' | 'reason'>
  private readonly waitSeconds: client.Histogram<'language'>
  private readonly breaches: client.Counter<'language' | 'limit'>
  private readonly asyncTaken: client.Counter<'claimed'>
  private readonly asyncFinished: client.Counter<'status'>
  private readonly callbacks: client.Counter<'outcome'>

  constructor (sources: MetricsSources) {
    const registers = [this.registry]
    client.collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS })
    this.requests = new client.Counter({ name: 'hearth_http_requests_total', help: 'HTTP requests by route pattern, method and status', labelNames: ['route', 'method', 'status'], registers })
    this.requestSeconds = new client.Histogram({ name: 'hearth_http_request_duration_seconds', help: 'HTTP request duration by route pattern', labelNames: ['route'], buckets: CALL_BUCKETS, registers })
    this.calls = new client.Counter({ name: 'hearth_calls_total', help: 'Calls by language, outcome (ok or the error code) and start (warm: a sandbox that served the function before)', labelNames: ['language', 'outcome', 'start'], registers })
    this.callSeconds = new client.Histogram({ name: 'hearth_call_duration_seconds', help: 'Call duration, waiting for a sandbox included', labelNames: ['language', 'start'], buckets: CALL_BUCKETS, registers })
    this.startSeconds = new client.Histogram({ name: 'hearth_sandbox_start_seconds', help: 'Fresh sandbox start to ready, forked from a zygote or spawned', labelNames: ['language', 'mode'], buckets: START_BUCKETS, registers })
    this.startFailures = new client.Counter({ name: 'hearth_sandbox_start_failures_total', help: 'Sandboxes that failed to become ready', labelNames: ['language', 'mode'], registers })
    this.destroyedTotal = new client.Counter({ name: 'hearth_sandboxes_destroyed_total', help: 'Sandboxes killed, by reason (used: after a fresh sandbox\'s one call)', labelNames: ['language', 'reason'], registers })
    this.waitSeconds = new client.Histogram({ name: 'hearth_wait_seconds', help: 'Time a call waited for its sandbox', labelNames: ['language'], buckets: CALL_BUCKETS, registers })
    this.breaches = new client.Counter({ name: 'hearth_limit_breaches_total', help: 'Calls that hit a limit (memory, pids, timeout, result, logs)', labelNames: ['language', 'limit'], registers })
    // Registered before the gauges it sets: its collect() reads the stats once
    // per scrape, and prom-client reads each metric in registration order.
    const pools = new client.Gauge({
      name: 'hearth_pool_sandboxes',
      help: 'Sandboxes of the language pools by state',
      labelNames: ['language', 'state'],
      registers,
      collect () {
        const s = sources.pools()
        for (const p of s.pools) {
          for (const state of ['ready', 'starting', 'borrowed'] as const) pools.set({ language: p.language, state }, p[state])
        }
        warm.set({ state: 'idle' }, s.warm.idle)
        warm.set({ state: 'busy' }, s.warm.sandboxes - s.warm.idle)
        live.set(s.sandboxes)
        waiting.set(s.pools.reduce((n, p) => n + p.waiting, s.warm.waiting))
        redis.set(sources.redisUp() ? 1 : 0)
        for (const [runtime, r] of Object.entries(s.runtimes ?? {})) zygote.set({ runtime }, r.mode === 'zygote' ? 1 : 0)
      }
    })
    const warm = new client.Gauge({ name: 'hearth_warm_sandboxes', help: 'Sandboxes bound to stored functions, by state', labelNames: ['state'], registers })
    const live = new client.Gauge({ name: 'hearth_sandboxes', help: 'Live sandboxes', registers })
    const waiting = new client.Gauge({ name: 'hearth_wait_queue_length', help: 'Calls waiting for a sandbox (QUEUE_MAX bounds them)', registers })
    const redis = new client.Gauge({ name: 'hearth_redis_up', help: '1 while the Redis connection is ready', registers })
    const zygote = new client.Gauge({ name: 'hearth_zygote_up', help: '1 while the runtime\'s fresh sandboxes start from a zygote, 0 while they are spawned (ZYGOTE=off, a host where zygotes cannot work, or none could start and one is tried again)', labelNames: ['runtime'], registers })
    const build = new client.Gauge({ name: 'hearth_build_info', help: 'hearth\'s version and what it runs on', labelNames: Object.keys(sources.build), registers })
    build.set(sources.build, 1)
    this.asyncTaken = new client.Counter({ name: 'hearth_async_started_total', help: 'Async calls this daemon started; claimed="true": taken over from a daemon that stopped confirming them (died)', labelNames: ['claimed'], registers })
    this.asyncFinished = new client.Counter({ name: 'hearth_async_finished_total', help: 'Async calls this daemon ended, by status (done, failed)', labelNames: ['status'], registers })
    this.callbacks = new client.Counter({ name: 'hearth_async_callback_attempts_total', help: 'Callback attempts by outcome (delivered, failed: to be retried, refused)', labelNames: ['outcome'], registers })
    const queued = new client.Gauge({
      name: 'hearth_async_queued',
      help: 'Async calls queued or running, every daemon\'s (the stream\'s length)',
      registers,
      async collect () {
        const n = await sources.asyncQueued?.().catch(() => null)
        if (n !== null && n !== undefined) queued.set(n)
      }
    })
    const running = new client.Gauge({ name: 'hearth_async_running', help: 'Async calls running on this daemon', registers, collect () { running.set(sources.asyncRunning?.() ?? 0) } })
  }

  taken (claimed: boolean): void {
    this.asyncTaken.inc({ claimed: String(claimed) })
  }

  finished (status: 'done' | 'failed'): void {
    this.asyncFinished.inc({ status })
  }

  callback (outcome: 'delivered' | 'failed' | 'refused'): void {
    this.callbacks.inc({ outcome })
  }

  request (route: string, method: string, status: number, seconds: number): void {
    this.requests.inc({ route, method, status: String(status) })
    this.requestSeconds.observe({ route }, seconds)
  }

  call (language: Language, outcome: string, start: 'warm' | 'fresh', seconds: number): void {
    this.calls.inc({ language, outcome, start })
    this.callSeconds.observe({ language, start }, seconds)
  }

  started (language: Language, mode: 'fork' | 'spawn', seconds: number, ok: boolean): void {
    if (ok) this.startSeconds.observe({ language, mode }, seconds)
    else this.startFailures.inc({ language, mode })
  }

  destroyed (language: Language, reason: DestroyReason): void {
    this.destroyedTotal.inc({ language, reason })
  }

  waited (language: Language, seconds: number): void {
    this.waitSeconds.observe({ language }, seconds)
  }

  breach (language: Language, limit: LimitName): void {
    this.breaches.inc({ language, limit })
  }

  get contentType (): string {
    return this.registry.contentType
  }

  async text (): Promise<string> {
    return await this.registry.metrics()
  }
}
