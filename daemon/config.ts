// Environment (plus an optional .env file) → one frozen, validated Config.
import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseEnv } from 'node:util'
import { bytes, ConfigError, DEFAULTS, flag, integer, oneOf, positiveNumber, type Env } from './settings.js'

export const LANGUAGES = ['python', 'javascript', 'typescript'] as const
export type Language = typeof LANGUAGES[number]

export type LimitsBackendName = 'auto' | 'cgroup2' | 'cgroup1' | 'rlimit' | 'none'
export type ZygoteMode = 'auto' | 'on' | 'off'
/** how a fresh node sandbox starts when zygotes run: forked from a node zygote, or executed by the python zygote */
export type NodeStart = 'fork' | 'exec'

export interface Config {
  readonly root: string // the checkout: runtimes/, node_modules/, build/
  readonly httpHost: string
  readonly httpPort: number
  /** null: /metrics on HTTP_PORT */
  readonly metricsPort: number | null
  readonly maxCpus: number
  readonly maxMemoryBytes: number
  readonly maxPids: number
  readonly codeMaxSize: number
  readonly inputMaxSize: number
  readonly inputMaxDepth: number
  readonly logMaxBytes: number
  readonly resultMaxBytes: number
  readonly timeoutMs: number // TIMEOUT_SCRIPT: the ceiling of a call; a request may ask for less
  readonly spawnTimeoutMs: number
  readonly poolMin: number
  readonly poolMax: number
  readonly queueMax: number
  readonly acquireTimeoutMs: number
  readonly warmMaxTotal: number
  readonly warmMaxPerFunction: number
  readonly warmIdleMs: number
  readonly warmMaxUses: number
  readonly sandboxUid: number
  readonly sandboxTmpBytes: number
  readonly seccomp: boolean
  readonly limitsBackend: LimitsBackendName
  readonly cgroupName: string
  readonly zygote: ZygoteMode
  readonly zygoteNode: NodeStart
  readonly zygoteMaxForks: number
  readonly zygoteMaxAgeMs: number
  /** each zygote moves its runtime's machine code onto 2 MB pages before it forks (runtimes/zygote/hugetext.c) */
  readonly zygoteHugeText: boolean
  /** each zygote pins the pages a child writes, so that fork copies them itself (runtimes/zygote/pin.c) */
  readonly zygotePinPages: boolean
  /** which forked children read the pages their first call will write before they are ready: spares (no call waiting), always, off */
  readonly zygotePretouch: 'spares' | 'always' | 'off'
  /** where the daemon puts what sandboxes must reach (zygote rendezvous sockets); readable by SANDBOX_UID */
  readonly runtimeDir: string
  readonly redisUrl: string | null // null: start the embedded redis-server
  /** REDIS_CLUSTER_NODES: seed nodes of a Redis Cluster (host:port); empty: not a cluster */
  readonly redisClusterNodes: ReadonlyArray<{ readonly host: string, readonly port: number }>
  readonly redisHost: string
  readonly redisPort: number
  readonly redisPassword: string
  readonly redisDb: number
  readonly redisTimeoutMs: number
  readonly idempotencyTtlSeconds: number
  readonly staleIfRedisDownSeconds: number
  readonly stateDir: string
  readonly shutdownGraceMs: number
  /** the hard deadline of a stop: past it the daemon exits 1, whatever is left undone */
  readonly shutdownTimeoutMs: number
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** AUTH: on (Bearer keys), off; `authExplicit`: set by the operator rather than defaulted */
  readonly auth: boolean
  readonly authExplicit: boolean
  /** ADMIN_TOKEN or the contents of ADMIN_TOKEN_FILE; null for none */
  readonly adminToken: string | null
  /** per-function packages (daemon/packages): the build sandbox's time and memory, a layer's size */
  readonly buildTimeoutMs: number
  readonly buildMaxMemoryBytes: number
  /** BUILD_ALLOW_SOURCE: pip may build source distributions (wheels only by default) */
  readonly buildAllowSource: boolean
  readonly layerMaxBytes: number
  readonly layerCacheMaxBytes: number
  /** asynchronous calls (daemon/async) */
  readonly async: AsyncConfig
}

export interface AsyncConfig {
  /** async calls this daemon runs at once (ASYNC_CONCURRENCY) */
  readonly concurrency: number
  /** calls queued or running, all daemons together, past which /run-async answers overloaded */
  readonly queueMax: number
  /** a call whose daemon stopped confirming it for this long is taken over by another */
  readonly claimIdleMs: number
  readonly maxAttempts: number
  readonly resultTtlSeconds: number
  readonly callbackSecret: string
  readonly callbackMaxAttempts: number
  /** CALLBACK_ALLOW: host names and CIDRs callbacks may reach beyond public addresses */
  readonly callbackAllow: readonly string[]
}

export { ConfigError, parseBytes, type Env, type EnvName } from './settings.js'

export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), existsSync(new URL('../package.json', import.meta.url)) ? '..' : '../..')

/**
 * The environment over the checkout's `.env` file, if there is one: values
 * already in the environment win. The file is read as Node reads `--env-file`
 * (util.parseEnv: quotes, `export`, comments after a value).
 */
export function withDotenv (env: Env = process.env, root = ROOT): Env {
  const file = resolve(root, '.env')
  if (!existsSync(file)) return env
  return { ...parseEnv(readFileSync(file, 'utf8')), ...env }
}

/** Validates every variable; the environment only: main.ts adds `.env` with withDotenv(). */
export function loadConfig (env: Env = process.env, root = ROOT): Config {
  const poolMin = integer(env, 'POOL_MIN', 0, 256)
  const poolMax = integer(env, 'POOL_MAX', 1, 256)
  if (poolMax < poolMin) throw new ConfigError('POOL_MAX', `must be at least POOL_MIN (${poolMin})`)
  const shutdownGraceMs = Math.round(positiveNumber(env, 'SHUTDOWN_GRACE_SECONDS') * 1000)
  const shutdownTimeoutMs = Math.round(positiveNumber(env, 'SHUTDOWN_TIMEOUT_SECONDS') * 1000)
  if (shutdownTimeoutMs <= shutdownGraceMs) throw new ConfigError('SHUTDOWN_TIMEOUT_SECONDS', `must be more than SHUTDOWN_GRACE_SECONDS (${shutdownGraceMs / 1000})`)
  const redisUrl = (env.REDIS_URL ?? '').trim()
  const redisHost = (env.REDIS_HOST ?? '').trim()
  const httpPort = integer(env, 'HTTP_PORT', 0, 65535)
  const metricsPort = (env.METRICS_PORT ?? '').trim() === '' ? null : integer(env, 'METRICS_PORT', 0, 65535)
  // Refused here, not by the listen after every part has started, which said the port was in use.
  if (metricsPort !== null && metricsPort !== 0 && metricsPort === httpPort) throw new ConfigError('METRICS_PORT', `must differ from HTTP_PORT (${httpPort}); leave it empty to serve /metrics on HTTP_PORT`)
  return Object.freeze({
    root,
    httpHost: (env.HTTP_HOST ?? DEFAULTS.HTTP_HOST).trim(),
    httpPort,
    metricsPort,
    maxCpus: positiveNumber(env, 'MAX_CPUS'),
    maxMemoryBytes: bytes(env, 'MAX_MEMORY'),
    maxPids: integer(env, 'MAX_PIDS', 4, 1 << 22),
    codeMaxSize: integer(env, 'CODE_MAX_SIZE', 1),
    inputMaxSize: integer(env, 'INPUT_MAX_SIZE', 2),
    inputMaxDepth: integer(env, 'INPUT_MAX_DEPTH', 1, 900),
    logMaxBytes: integer(env, 'LOG_MAX_BYTES', 0),
    resultMaxBytes: integer(env, 'RESULT_MAX_BYTES', 16),
    timeoutMs: Math.round(positiveNumber(env, 'TIMEOUT_SCRIPT') * 1000),
    spawnTimeoutMs: Math.round(positiveNumber(env, 'SPAWN_TIMEOUT') * 1000),
    poolMin,
    poolMax,
    queueMax: integer(env, 'QUEUE_MAX', 0),
    acquireTimeoutMs: Math.round(positiveNumber(env, 'ACQUIRE_TIMEOUT') * 1000),
    warmMaxTotal: integer(env, 'WARM_MAX_TOTAL', 0, 4096),
    warmMaxPerFunction: integer(env, 'WARM_MAX_PER_FUNCTION', 0, 256),
    warmIdleMs: Math.round(positiveNumber(env, 'WARM_IDLE_SECONDS') * 1000),
    warmMaxUses: integer(env, 'WARM_MAX_USES', 1),
    sandboxUid: integer(env, 'SANDBOX_UID', 1, 2 ** 32 - 2),
    sandboxTmpBytes: bytes(env, 'SANDBOX_TMP_SIZE'),
    seccomp: flag(env, 'SECCOMP'),
    limitsBackend: oneOf(env, 'LIMITS_BACKEND', ['auto', 'cgroup2', 'cgroup1', 'rlimit', 'none'] as const),
    cgroupName: cgroupName(env),
    zygote: oneOf(env, 'ZYGOTE', ['auto', 'on', 'off'] as const),
    zygoteNode: oneOf(env, 'ZYGOTE_NODE', ['fork', 'exec'] as const),
    zygoteMaxForks: integer(env, 'ZYGOTE_MAX_FORKS', 1),
    zygoteMaxAgeMs: Math.round(positiveNumber(env, 'ZYGOTE_MAX_AGE_SECONDS') * 1000),
    zygoteHugeText: flag(env, 'ZYGOTE_HUGE_TEXT'),
    zygotePinPages: flag(env, 'ZYGOTE_PIN_PAGES'),
    zygotePretouch: oneOf(env, 'ZYGOTE_PRETOUCH', ['spares', 'always', 'off'] as const),
    runtimeDir: runtimeDir(env),
    redisUrl: redisUrl !== '' ? redisUrl : null,
    redisClusterNodes: clusterNodes(env),
    redisHost,
    redisPort: integer(env, 'REDIS_PORT', 1, 65535),
    redisPassword: env.REDIS_PASSWORD ?? '',
    redisDb: integer(env, 'REDIS_DB', 0, 15),
    redisTimeoutMs: Math.round(positiveNumber(env, 'REDIS_TIMEOUT_SECONDS') * 1000),
    idempotencyTtlSeconds: integer(env, 'IDEMPOTENCY_TTL_SECONDS', 1, 30 * 86400),
    staleIfRedisDownSeconds: integer(env, 'STALE_IF_REDIS_DOWN_SECONDS', 0, 7 * 86400),
    stateDir: resolve(root, (env.STATE_DIR ?? DEFAULTS.STATE_DIR).trim()),
    shutdownGraceMs,
    shutdownTimeoutMs,
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    ...auth(env, (env.HTTP_HOST ?? DEFAULTS.HTTP_HOST).trim()),
    buildTimeoutMs: Math.round(positiveNumber(env, 'BUILD_TIMEOUT') * 1000),
    buildMaxMemoryBytes: bytes(env, 'BUILD_MAX_MEMORY'),
    buildAllowSource: flag(env, 'BUILD_ALLOW_SOURCE'),
    layerMaxBytes: bytes(env, 'LAYER_MAX_SIZE'),
    layerCacheMaxBytes: bytes(env, 'LAYER_CACHE_MAX'),
    async: asyncConfig(env, poolMax)
  })
}

export function isLoopback (host: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === 'localhost'
}

/**
 * AUTH defaults to off on a loopback address only: listening anywhere else
 * needs a choice, AUTH=on, or AUTH=off (which the daemon logs as a warning).
 */
function auth (env: Env, host: string): Pick<Config, 'auth' | 'authExplicit' | 'adminToken'> {
  const text = (env.AUTH ?? '').trim()
  const authExplicit = text !== ''
  if (!authExplicit && !isLoopback(host)) {
    throw new ConfigError('AUTH', `must be set when HTTP_HOST (${host}) is not a loopback address: AUTH=on (with ADMIN_TOKEN to create keys), or AUTH=off to let anyone who reaches the port run code`)
  }
  const on = authExplicit ? flag(env, 'AUTH') : false
  const file = (env.ADMIN_TOKEN_FILE ?? '').trim()
  let token = env.ADMIN_TOKEN ?? ''
  if (file !== '') {
    try {
      token = readFileSync(file, 'utf8').trim()
    } catch (err) {
      throw new ConfigError('ADMIN_TOKEN_FILE', `cannot be read: ${(err as Error).message}`)
    }
  }
  if (token !== '' && token.length < 16) throw new ConfigError(file !== '' ? 'ADMIN_TOKEN_FILE' : 'ADMIN_TOKEN', 'must be at least 16 characters')
  return { auth: on, authExplicit, adminToken: token === '' ? null : token }
}

function asyncConfig (env: Env, poolMax: number): AsyncConfig {
  const concurrency = (env.ASYNC_CONCURRENCY ?? '').trim() === '' ? Math.max(1, Math.floor(poolMax / 2)) : integer(env, 'ASYNC_CONCURRENCY', 0, 4096)
  return Object.freeze({
    concurrency,
    queueMax: integer(env, 'ASYNC_QUEUE_MAX', 1),
    claimIdleMs: Math.round(positiveNumber(env, 'ASYNC_CLAIM_IDLE') * 1000),
    maxAttempts: integer(env, 'ASYNC_MAX_ATTEMPTS', 1, 100),
    resultTtlSeconds: integer(env, 'ASYNC_RESULT_TTL', 1, 365 * 86400),
    callbackSecret: env.CALLBACK_SECRET ?? '',
    callbackMaxAttempts: integer(env, 'CALLBACK_MAX_ATTEMPTS', 1, 100),
    callbackAllow: Object.freeze((env.CALLBACK_ALLOW ?? '').split(/[\s,]+/).filter(Boolean))
  })
}

/** One path component: sandbox cgroups are made under it, so no `/`, `.` or `..`. */
function cgroupName (env: Env): string {
  const text = (env.CGROUP_NAME ?? DEFAULTS.CGROUP_NAME).trim()
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(text)) {
    throw new ConfigError('CGROUP_NAME', `must be one name of letters, digits, '_', '.', '-' (got ${JSON.stringify(text)})`)
  }
  return text
}

/**
 * RUNTIME_DIR, or a default the sandbox uid can traverse: /run/hearth for
 * root, else the user's runtime directory (systemd sets RUNTIME_DIRECTORY and
 * XDG_RUNTIME_DIR), else the temporary directory.
 */
function runtimeDir (env: Env): string {
  const set = (env.RUNTIME_DIR ?? '').trim()
  if (set !== '') return resolve(set)
  const systemd = (env.RUNTIME_DIRECTORY ?? '').trim().split(':')[0] ?? ''
  if (systemd !== '') return systemd
  if (process.getuid?.() === 0) return '/run/hearth'
  const xdg = (env.XDG_RUNTIME_DIR ?? '').trim()
  return xdg !== '' ? join(xdg, 'hearth') : join(tmpdir(), `hearth-${process.getuid?.() ?? 'user'}`)
}

/** Whether the daemon should supervise its own redis-server (no REDIS_URL / REDIS_HOST / REDIS_CLUSTER_NODES given). */
export function wantsEmbeddedRedis (config: Config): boolean {
  return config.redisUrl === null && config.redisHost === '' && config.redisClusterNodes.length === 0
}

/** REDIS_CLUSTER_NODES: host:port, comma or space separated ([v6]:port for IPv6). */
function clusterNodes (env: Env): Array<{ host: string, port: number }> {
  const text = (env.REDIS_CLUSTER_NODES ?? '').trim()
  if (text === '') return []
  if ((env.REDIS_URL ?? '').trim() !== '' || (env.REDIS_HOST ?? '').trim() !== '') {
    throw new ConfigError('REDIS_CLUSTER_NODES', 'cannot be set with REDIS_URL or REDIS_HOST: choose one Redis, or a cluster')
  }
  return text.split(/[\s,]+/).map((node) => {
    const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(node)
    const port = Number(m?.[3])
    if (m === null || port < 1 || port > 65535) throw new ConfigError('REDIS_CLUSTER_NODES', `must be host:port entries (got ${JSON.stringify(node)})`)
    return { host: (m[1] ?? m[2]) as string, port }
  })
}

/** The host uid sandboxes run as: SANDBOX_UID when the daemon is root (setpriv drops to it), else null (already unprivileged). */
export function sandboxHostUid (c: Config): number | null {
  return process.getuid?.() === 0 ? c.sandboxUid : null
}
