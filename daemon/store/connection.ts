// The ioredis client: fail fast while Redis is away (so store endpoints answer
// 503 at once and /run-now never waits on it), reconnect by itself.
import { Redis, type RedisOptions } from 'ioredis'
import type { Config } from '../config.js'

export interface RedisTarget {
  readonly url?: string
  readonly host?: string
  readonly port?: number
  readonly path?: string // unix socket (the embedded server)
  readonly password?: string
  readonly db?: number
}

export function targetFromConfig (config: Config): RedisTarget {
  if (config.redisUrl !== null) return { url: config.redisUrl }
  return { host: config.redisHost, port: config.redisPort, password: config.redisPassword || undefined, db: config.redisDb }
}

/**
 * Reports a connection's errors once per kind: a wrong password or an
 * unreachable host is said when it starts and again only when it changes
 * (ioredis retries every 2 s; a line per retry would flood the log).
 */
export function reportErrors (redis: Redis, report: (message: string) => void): void {
  let last = ''
  redis.on('error', (err: Error) => {
    const kind = err.message.replace(/\d+\.\d+\.\d+\.\d+:\d+|\d+/g, '#')
    if (kind !== last) report(err.message)
    last = kind
  })
  redis.on('ready', () => { last = '' })
}

export function connectRedis (target: RedisTarget, timeoutMs: number): Redis {
  const options: RedisOptions = {
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    // No offline queue and one retry per command: while Redis is down a
    // command fails at once instead of queueing behind the reconnect.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    // Commands issued in the same tick (concurrent calls resolving their
    // function) go out in one write: fewer syscalls under load.
    enableAutoPipelining: true,
    lazyConnect: false
  }
  if (target.path !== undefined) options.path = target.path
  if (target.host !== undefined) options.host = target.host
  if (target.port !== undefined) options.port = target.port
  if (target.password !== undefined) options.password = target.password
  if (target.db !== undefined) options.db = target.db
  const redis = target.url !== undefined ? new Redis(target.url, options) : new Redis(options)
  return redis
}
