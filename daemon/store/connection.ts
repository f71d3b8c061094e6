// The ioredis client, one Redis or a Redis Cluster: fail fast while Redis is
// away (so store endpoints answer 503 at once and /run-now never waits on
// it), reconnect by itself.
import calculateSlot from 'cluster-key-slot'
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { Config } from '../config.js'

/** What every module that talks to Redis holds: the same commands on one server or a cluster. */
export type RedisClient = Redis | Cluster

export interface RedisTarget {
  readonly url?: string
  readonly host?: string
  readonly port?: number
  readonly path?: string // unix socket (the embedded server)
  readonly password?: string
  readonly db?: number
  /** seed nodes of a Redis Cluster */
  readonly cluster?: ReadonlyArray<{ readonly host: string, readonly port: number }>
}

export function targetFromConfig (config: Config): RedisTarget {
  if (config.redisClusterNodes.length > 0) return { cluster: config.redisClusterNodes, password: config.redisPassword || undefined }
  if (config.redisUrl !== null) return { url: config.redisUrl }
  return { host: config.redisHost, port: config.redisPort, password: config.redisPassword || undefined, db: config.redisDb }
}

/**
 * Reports a connection's errors once per kind: a wrong password or an
 * unreachable host is said when it starts and again only when it changes
 * (ioredis retries every 2 s; a line per retry would flood the log).
 */
export function reportErrors (redis: RedisClient, report: (message: string) => void): void {
  let last = ''
  redis.on('error', (err: Error) => {
    const kind = err.message.replace(/\d+\.\d+\.\d+\.\d+:\d+|\d+/g, '#')
    if (kind !== last) report(err.message)
    last = kind
  })
  redis.on('ready', () => { last = '' })
}

const retry = (times: number): number => Math.min(100 * times, 2000)

export function connectRedis (target: RedisTarget, timeoutMs: number): RedisClient {
  const options: RedisOptions = {
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    // No offline queue and one retry per command: while Redis is down a
    // command fails at once instead of queueing behind the reconnect.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: retry,
    // Commands issued in the same tick (concurrent calls resolving their
    // function) go out in one write: fewer syscalls under load.
    enableAutoPipelining: true,
    lazyConnect: false
  }
  if (target.password !== undefined) options.password = target.password
  if (target.cluster !== undefined) {
    const { retryStrategy: _, enableOfflineQueue, enableAutoPipelining, ...redisOptions } = options
    const clusterOptions: ClusterOptions = {
      redisOptions,
      enableOfflineQueue,
      enableAutoPipelining,
      clusterRetryStrategy: retry,
      // A node that moved or failed over: learn the new slot map at once.
      slotsRefreshTimeout: timeoutMs
    }
    return new Cluster(target.cluster.map((n) => ({ host: n.host, port: n.port })), clusterOptions)
  }
  if (target.path !== undefined) options.path = target.path
  if (target.host !== undefined) options.host = target.host
  if (target.port !== undefined) options.port = target.port
  if (target.db !== undefined) options.db = target.db
  return target.url !== undefined ? new Redis(target.url, options) : new Redis(options)
}

/** A second connection to the same Redis or cluster (subscribers, blocking reads). */
export function duplicate (client: RedisClient): RedisClient {
  return client instanceof Cluster ? client.duplicate() : client.duplicate()
}

/**
 * Whether a command on `key` would go out now. A write is refused as surely
 * not done when it would not: a cluster client reports a command on a node
 * connection that just closed as "Connection is closed.", which can also mean
 * "sent, then lost", and must then be answered as outcome unknown.
 */
export function reachable (client: RedisClient, key: string): boolean {
  if (client.status !== 'ready') return false
  if (!(client instanceof Cluster)) return true
  const nodeKey = client.slots[calculateSlot(key)]?.[0]
  return client.nodes('master').some((n) => `${n.options.host ?? ''}:${n.options.port ?? ''}` === nodeKey && n.status === 'ready')
}
