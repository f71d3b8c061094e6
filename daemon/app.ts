// Wiring: config → limits backend → runner → store → HTTP. One start, one stop.
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Cluster } from 'ioredis'
import { AsyncCalls } from './async/index.js'
import { Authenticator } from './auth/index.js'
import { CannotStart } from './errors.js'
import { isLoopback, sandboxHostUid, wantsEmbeddedRedis, type Config } from './config.js'
import { HttpServer } from './http/server.js'
import { checkPortFree } from './http/listen.js'
import { listenMetrics } from './http/metrics.js'
import type { Logger } from './log.js'
import { Metrics, type PoolGauges } from './metrics/index.js'
import { Packages } from './packages/index.js'
import { Quotas } from './quotas/index.js'
import { Runner } from './pool/runner.js'
import { chooseLimitsBackend, limitsOf, type LimitsBackend } from './sandbox/limits/index.js'
import { probeBwrap } from './sandbox/probe.js'
import { seccompProgram } from './sandbox/seccomp.js'
import { connectRedis, duplicate, reportErrors, targetFromConfig, type RedisClient } from './store/connection.js'
import { EmbeddedRedis } from './store/embedded-redis.js'
import { FunctionStore } from './store/function-store.js'
import { makeInstanceDir, removeStale } from './runtime-dir.js'
import { checkReadable, prepareRuntimeFiles } from './runtime-files.js'
import { foreignBinds } from './sandbox/runtimes.js'
import { lockStateDir } from './state-lock.js'
import { makeUsableDir } from './usable-dir.js'
import { startForkers } from './zygote/index.js'

export interface App {
  readonly port: number
  readonly limits: LimitsBackend
  /** Stops accepting, lets in-flight calls finish (up to the grace period), then tears down. */
  stop: () => Promise<void>
}

async function redisReady (redis: RedisClient, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true
  return await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs)
    redis.once('ready', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

export async function startApp (config: Config, log: Logger): Promise<App> {
  const stateLock = await lockStateDir(config.stateDir)
  await checkPortFree(config.httpHost, config.httpPort, 'HTTP_HOST, HTTP_PORT')
  if (config.metricsPort !== null) await checkPortFree(config.httpHost, config.metricsPort, 'METRICS_PORT')
  makeUsableDir(config.runtimeDir, 'RUNTIME_DIR', 0o755) // refused here, before any cgroup exists
  const limits = await chooseLimitsBackend(config.limitsBackend, limitsOf(config), config.cgroupName)
  if (limits.name === 'rlimit') {
    log.warn({ detail: limits.detail, passedOver: limits.passedOver }, 'NO CGROUP AVAILABLE: sandboxes are limited by rlimits only (no CPU quota, weak memory and process limits). Run under systemd with Delegate=yes, or as root with cgroup v1/v2 writable.')
  } else {
    log.info({ backend: limits.name, detail: limits.detail, ...limits.limits, passedOver: limits.passedOver }, 'resource limits')
  }
  // In the background: a dead tree's cgroups may stay busy for ~2 s.
  limits.removeStale().then((removed) => {
    if (removed > 0) log.info({ removed }, 'removed the sandbox cgroups of daemons that are gone')
  }, (err: Error) => log.warn({ err: err.message }, 'cannot remove stale sandbox cgroups'))
  const seccompFile = config.seccomp ? seccompProgram(config.root, config.stateDir) : null
  if (seccompFile === null) log.warn('SECCOMP=off: sandboxes run without the seccomp filter')
  const hostUid = sandboxHostUid(config)
  const bwrap = probeBwrap(hostUid)
  if (!bwrap.disableUserns) {
    if (seccompFile === null) throw new CannotStart(`${bwrap.detail}, but SECCOMP=off: refusing to run sandboxes that could create user namespaces`)
    log.warn(bwrap.detail)
  }
  const stale = removeStale(config.runtimeDir)
  if (stale > 0) log.info({ runtimeDir: config.runtimeDir, removed: stale }, 'removed the runtime directories of daemons that are gone')
  const instanceDir = makeInstanceDir(config.runtimeDir)
  const { files, zygoteProblem } = await prepareRuntimeFiles(config, instanceDir)
  checkReadable(foreignBinds(files), hostUid)
  const forkers = await startForkers({
    config,
    hostUid,
    seccompFile,
    instanceDir,
    files,
    zygoteProblem,
    forkInto: limits.forkInto,
    warn: (msg, fields) => log.warn(fields ?? {}, msg)
  })

  let embedded: EmbeddedRedis | null = null
  if (wantsEmbeddedRedis(config)) {
    embedded = new EmbeddedRedis(config.stateDir, log)
    await embedded.start()
    log.info({ socket: embedded.socket }, 'embedded redis-server started')
  }
  const redis = connectRedis(embedded !== null ? { path: embedded.socket } : targetFromConfig(config), config.redisTimeoutMs)
  // A second connection, subscribed to invalidations: the store's cache of
  // which version is current is trusted only while it is live.
  const subscriber = duplicate(redis)
  // Also seen in /readyz and as 503s; ioredis reconnects by itself.
  reportErrors(redis, (message) => log.error({ err: message }, 'Redis connection error'))
  subscriber.on('error', () => {}) // the same server: its errors are the first connection's
  const store = new FunctionStore(redis, subscriber, {
    timeoutMs: config.redisTimeoutMs,
    idempotencyTtlSeconds: config.idempotencyTtlSeconds,
    staleSeconds: config.staleIfRedisDownSeconds
  })
  // Listen only once Redis answers (or after its timeout: run-now works without it).
  if (!await redisReady(redis, config.redisTimeoutMs)) log.warn('Redis is not answering yet; store endpoints answer 503 until it does')

  const pkg = JSON.parse(readFileSync(join(config.root, 'package.json'), 'utf8')) as { version: string, dependencies: Record<string, string> }
  const pinned = (name: string): string => pkg.dependencies[name]?.replace(/^.*@/, '') ?? ''
  const metrics: Metrics = new Metrics({
    pools: (): PoolGauges => runner.stats(),
    redisUp: () => redis.status === 'ready',
    asyncQueued: async () => redis.status === 'ready' ? await asyncCalls.calls.queued() : null,
    asyncRunning: () => asyncCalls.running,
    build: { version: pkg.version, node: process.version, uws: pinned('uWebSockets.js'), esbuild: pinned('esbuild'), ioredis: pinned('ioredis') }
  })
  const runner: Runner = new Runner({
    observer: metrics,
    config,
    limits,
    seccompFile,
    disableUserns: bwrap.disableUserns,
    forkers: forkers.byRuntime,
    runtimeFiles: files,
    onSpawnError: (language, err, failures) => log.error({ language, failures, err: err.message }, 'sandbox failed to start'),
    onBackgroundError: (err) => log.warn({ err: err.message }, 'sandbox teardown failed')
  })
  const auth = new Authenticator(config.auth, config.adminToken, redis, config.redisTimeoutMs, (msg) => log.warn(msg))
  if (redis.status === 'ready' && !(redis instanceof Cluster)) {
    await auth.keys.migrateLegacy().then((moved) => {
      if (moved > 0) log.info({ moved }, 'API keys moved to their hash-tagged names')
    }, (err: Error) => log.warn({ err: err.message }, 'cannot move API keys to their hash-tagged names yet (retried at the next start)'))
  }
  if (!config.auth && !isLoopback(config.httpHost)) log.warn({ host: config.httpHost }, 'AUTH=off on a non-loopback address: anyone who reaches the port can run code, and change or delete any function')
  if (config.auth && config.adminToken === null) log.warn('AUTH=on without ADMIN_TOKEN: no key can be created here (keys made by another daemon sharing the Redis still work)')
  const quotas = new Quotas(redis, { leaseMs: config.timeoutMs + config.acquireTimeoutMs + 30_000, warn: (msg, fields) => log.warn(fields ?? {}, msg) })
  const packages = new Packages({
    stateDir: config.stateDir,
    limits,
    // Build sandboxes: limits of their own (npm needs more than a call), in cgroups beside the sandboxes'.
    buildLimits: { memoryBytes: config.buildMaxMemoryBytes, cpus: config.maxCpus, pids: 512, sandboxes: 4 },
    hostUid,
    timeoutMs: config.buildTimeoutMs,
    allowSource: config.buildAllowSource,
    maxBytes: config.layerMaxBytes,
    cacheMaxBytes: config.layerCacheMaxBytes,
    bound: () => runner.layersInUse()
  })
  const noPackages = await packages.start()
  if (noPackages !== null) log.warn(noPackages)
  // A version uploaded through another daemon: its layer is built here ahead
  // of its first call (from its lock), not by that call.
  // (Read from the versions' meta, not resolve(): that would cache the
  // function as if it had been called, which STALE_IF_REDIS_DOWN serves.)
  store.onChange((path) => {
    store.versions(path).then(async (versions) => {
      const latest = versions.at(-1)
      if (latest?.dependencies === undefined || packages.layers.has(latest.dependencies.layer)) return
      const lease = await packages.ensure(latest.dependencies, async () => await store.lock(path, latest.version))
      lease.release()
      log.info({ function: path, version: latest.version, layer: latest.dependencies.layer }, 'packages installed ahead of the first call')
    }).catch(() => {}) // deleted meanwhile, or the build failed: the first call says why
  })
  const asyncCalls: AsyncCalls = new AsyncCalls({
    config: config.async,
    redis,
    redisTimeoutMs: config.redisTimeoutMs,
    run: async (req) => await runner.run(req),
    busy: () => runner.waiting() > 0,
    codeOf: async (path, version) => {
      const fn = await store.resolve(path, version)
      const lease = fn.dependencies === undefined ? undefined : await packages.ensure(fn.dependencies, async () => await store.lock(path, fn.version))
      return { code: fn.code, layer: lease?.dir, release: lease?.release }
    },
    observer: metrics,
    warn: (msg, fields) => log.warn(fields ?? {}, msg)
  })
  await asyncCalls.start()
  const http = new HttpServer({ config, log, runner, store, limits, metrics, auth, quotas, async: asyncCalls, packages })
  const port = await http.listen(config.httpHost, config.httpPort)
  const metricsListener = config.metricsPort === null ? null : await listenMetrics(config.httpHost, config.metricsPort, metrics)
  if (metricsListener !== null) log.info({ port: metricsListener.port }, 'metrics listening (METRICS_PORT)')

  return {
    port,
    limits,
    async stop () {
      // Async calls still running after the grace stay pending: another daemon runs them again.
      const [finished] = await Promise.all([http.drain(config.shutdownGraceMs), asyncCalls.stop(config.shutdownGraceMs)])
      if (!finished) log.warn({ inFlight: http.requestsInFlight }, 'grace period over: killing the calls still running')
      await runner.close()
      await forkers.close()
      rmSync(instanceDir, { recursive: true, force: true })
      http.close()
      metricsListener?.close()
      subscriber.disconnect()
      redis.disconnect()
      await embedded?.stop()
      await limits.close()
      stateLock.release()
    }
  }
}
