// Every setting's default, as the environment names it, and how one value
// is read from the environment and checked (config.ts builds the Config).
// Names from go-faas keep their meaning; hearth's own variables extend them.

export const DEFAULTS = {
  HTTP_HOST: '127.0.0.1',
  HTTP_PORT: '8080',
  METRICS_PORT: '',
  MAX_CPUS: '1',
  MAX_MEMORY: '128M',
  MAX_PIDS: '64',
  CODE_MAX_SIZE: String(256 << 10),
  INPUT_MAX_SIZE: String(1 << 20),
  // Python's json decoder recurses, within the interpreter's limit of 1,000 frames.
  INPUT_MAX_DEPTH: '512',
  LOG_MAX_BYTES: String(1 << 20),
  RESULT_MAX_BYTES: String(1 << 20),
  TIMEOUT_SCRIPT: '30',
  SPAWN_TIMEOUT: '10',
  POOL_MIN: '2',
  POOL_MAX: '8',
  QUEUE_MAX: '256',
  ACQUIRE_TIMEOUT: '10',
  WARM_MAX_TOTAL: '32',
  WARM_MAX_PER_FUNCTION: '4',
  WARM_IDLE_SECONDS: '60',
  WARM_MAX_USES: '10000',
  SANDBOX_UID: '65534',
  SANDBOX_TMP_SIZE: '16M',
  SECCOMP: 'on',
  LIMITS_BACKEND: 'auto',
  CGROUP_NAME: 'hearth',
  ZYGOTE: 'auto',
  ZYGOTE_NODE: 'fork',
  ZYGOTE_MAX_FORKS: '1000',
  ZYGOTE_MAX_AGE_SECONDS: '600',
  ZYGOTE_HUGE_TEXT: 'on',
  ZYGOTE_PIN_PAGES: 'on',
  ZYGOTE_PRETOUCH: 'spares',
  RUNTIME_DIR: '',
  REDIS_URL: '',
  REDIS_CLUSTER_NODES: '',
  REDIS_HOST: '',
  REDIS_PORT: '6379',
  REDIS_PASSWORD: '',
  REDIS_DB: '0',
  REDIS_TIMEOUT_SECONDS: '5',
  IDEMPOTENCY_TTL_SECONDS: '86400',
  STALE_IF_REDIS_DOWN_SECONDS: '0',
  STATE_DIR: '.state',
  SHUTDOWN_GRACE_SECONDS: '10',
  // Under hearth.service's TimeoutStopSec=20s, so the daemon, not systemd's SIGKILL, ends a stop.
  SHUTDOWN_TIMEOUT_SECONDS: '15',
  LOG_LEVEL: 'info',
  AUTH: '',
  ADMIN_TOKEN: '',
  ADMIN_TOKEN_FILE: '',
  BUILD_TIMEOUT: '300',
  BUILD_MAX_MEMORY: '1G',
  BUILD_ALLOW_SOURCE: 'false',
  LAYER_MAX_SIZE: '512M',
  LAYER_CACHE_MAX: '4G',
  ASYNC_CONCURRENCY: '', // half of POOL_MAX: the rest is kept for synchronous calls
  ASYNC_QUEUE_MAX: '10000',
  ASYNC_CLAIM_IDLE: '30',
  ASYNC_MAX_ATTEMPTS: '3',
  ASYNC_RESULT_TTL: '86400',
  CALLBACK_SECRET: '',
  CALLBACK_MAX_ATTEMPTS: '5',
  CALLBACK_ALLOW: ''
} as const

export type EnvName = keyof typeof DEFAULTS
export type Env = Partial<Record<string, string | undefined>>

export class ConfigError extends Error {
  constructor (name: string, problem: string) {
    super(`${name} ${problem}`)
    this.name = 'ConfigError'
  }
}

export function integer (env: Env, name: EnvName, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const text = (env[name] ?? DEFAULTS[name]).trim()
  const n = Number(text)
  if (!/^-?\d+$/.test(text) || n < min || n > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max} (got ${JSON.stringify(text)})`)
  }
  return n
}

export function positiveNumber (env: Env, name: EnvName): number {
  const text = (env[name] ?? DEFAULTS[name]).trim()
  const n = Number(text)
  if (text === '' || !Number.isFinite(n) || n <= 0) throw new ConfigError(name, `must be a positive number (got ${JSON.stringify(text)})`)
  return n
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }

/** Sizes as systemd and go-faas write them: 128M, 1G, 65536. */
export function parseBytes (text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim())
  if (m === null) return null
  const n = Math.floor(Number(m[1]) * (UNITS[(m[2] ?? '').toUpperCase()] ?? 1))
  return n > 0 ? n : null
}

export function bytes (env: Env, name: EnvName): number {
  const text = env[name] ?? DEFAULTS[name]
  const n = parseBytes(text)
  if (n === null) throw new ConfigError(name, `must be a size such as 128M or 1G (got ${JSON.stringify(text)})`)
  return n
}

export function flag (env: Env, name: EnvName): boolean {
  const text = (env[name] ?? DEFAULTS[name]).trim().toLowerCase()
  if (['1', 'on', 'true', 'yes'].includes(text)) return true
  if (['0', 'off', 'false', 'no'].includes(text)) return false
  throw new ConfigError(name, `must be on or off (got ${JSON.stringify(text)})`)
}

export function oneOf<T extends string> (env: Env, name: EnvName, allowed: readonly T[]): T {
  const text = (env[name] ?? DEFAULTS[name]).trim() as T
  if (!allowed.includes(text)) throw new ConfigError(name, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(text)})`)
  return text
}
