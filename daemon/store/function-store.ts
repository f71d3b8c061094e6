// Functions and their versions in Redis, with a local cache of immutable code.
import { createHash } from 'node:crypto'
import { Cluster } from 'ioredis'
import { reachable, type RedisClient } from './connection.js'
import { CodeCache } from './code-cache.js'
import { ByteLru, textBytes } from '../lru.js'
import type { Language } from '../config.js'
import type { VersionDependencies } from '../packages/index.js'
import { HearthError } from '../errors.js'
import { functionKeys, INDEX_KEY, INVALIDATE_CHANNEL } from './keys.js'
import { DELETE, UPLOAD } from './scripts.js'

export interface VersionMeta {
  readonly version: number
  readonly language: Language
  readonly size: number
  readonly sha256: string
  readonly created: number // unix seconds
  /** its packages: what the upload asked for, the exact set installed, the layer's hash */
  readonly dependencies?: VersionDependencies
}

export interface UploadOutcome extends VersionMeta {
  /** the answer of an earlier upload with the same Idempotency-Key; nothing new was stored */
  readonly replayed: boolean
}

export interface StoredFunction extends VersionMeta {
  readonly path: string
  readonly code: string
  /** served from the cache while Redis is unreachable: seconds since Redis last confirmed it */
  readonly staleSeconds?: number
}

export interface FunctionSummary {
  readonly path: string
  readonly latest: number
  readonly versions: number
  readonly language: Language
}

type ScriptedRedis = RedisClient & {
  hearthUpload: (seq: string, versions: string, code: string, meta: string, idempotency: string, locks: string,
    codeArg: string, language: string, size: number, sha: string, channel: string, path: string, fingerprint: string, ttl: number,
    dependencies: string, lock: string) => Promise<[number, number, number, string]>
  hearthDelete: (seq: string, versions: string, code: string, meta: string, locks: string, channel: string, path: string, ...version: string[]) => Promise<[number, number]>
}

/** The code of versions this daemon ran, in memory (code-cache.ts). */
const CODE_CACHE_BYTES = 32 << 20
/** Which version of a path is current: small entries (../lru.ts). */
const LATEST_CACHE_BYTES = 8 << 20
/** STALE_IF_REDIS_DOWN_SECONDS: the version last known current, code included, per path. */
const LAST_KNOWN_BYTES = 32 << 20

/** What a path's entry is charged beside its code. */
const pathBytes = (path: string): number => textBytes(path) + 128

/**
 * What went wrong with Redis, in hearth's words (the client's own, such as
 * "Stream isn't writeable and enableOfflineQueue options is false", mean
 * nothing to a caller), and whether a command may have run anyway: one that
 * was never sent did not; one sent and not answered may have.
 */
export function storeFailure (err: Error, timeoutMs: number): { reason: string, maybeDone: boolean } {
  const m = err.message
  if (/enableOfflineQueue|Connection is closed|ECONNREFUSED|ENOENT|EPIPE|ECONNRESET|not connected/i.test(m) && !/timed out/i.test(m)) {
    return { reason: 'Redis is not reachable', maybeDone: /Connection is closed|ECONNRESET|EPIPE/i.test(m) }
  }
  if (/timed out/i.test(m)) return { reason: `Redis did not answer within ${timeoutMs / 1000} s`, maybeDone: true }
  if (/max retries per request/i.test(m)) return { reason: 'Redis is not reachable (the connection dropped and the retry failed)', maybeDone: true }
  if (/NOAUTH|WRONGPASS/i.test(m)) return { reason: 'Redis refused hearth\'s credentials (REDIS_PASSWORD)', maybeDone: false }
  if (/LOADING/.test(m)) return { reason: 'Redis is loading its data set', maybeDone: false }
  if (/READONLY/.test(m)) return { reason: 'Redis is a read-only replica', maybeDone: false }
  return { reason: `Redis answered with an error (${m.split('\n')[0] ?? m})`, maybeDone: false }
}

/**
 * Which version is current, and the code of each version, are cached. Every
 * upload and delete publishes its path on INVALIDATE_CHANNEL inside the same
 * Lua script that changes it, so Redis has sent the invalidation to every
 * daemon before it answers the upload: a daemon whose subscription is live
 * trusts its cache with no round trip. While the subscription is not live
 * (starting, reconnecting) nothing is trusted: each call asks Redis.
 */
export class FunctionStore {
  private readonly redis: ScriptedRedis
  private readonly timeoutMs: number
  private readonly idempotencyTtl: number
  private readonly code = new CodeCache<StoredFunction>(CODE_CACHE_BYTES) // path@version → function (immutable)
  private readonly latest = new ByteLru<string, number>(LATEST_CACHE_BYTES) // path → current version
  private live = false
  private readonly changeListeners: Array<(path: string) => void> = []
  /** when the subscription was last lost: what was cached while live was current until then */
  private lostAt = 0
  /** path → the version last resolved as current, and when Redis confirmed it (null: while live) */
  private readonly lastKnown = new ByteLru<string, { fn: StoredFunction, at: number | null }>(LAST_KNOWN_BYTES)
  private readonly staleMs: number
  // Bumped by every invalidation and by every change of subscription state: a
  // Redis answer that raced one of them is used but not cached.
  private epoch = 0

  /**
   * Whether an invalidation reaches this daemon before the change's answer
   * leaves Redis. True on one Redis (the script's PUBLISH is delivered first).
   * Not on a Redis Cluster: the cluster bus forwards a PUBLISH to the other
   * nodes' subscribers after the script has answered, so a daemon there asks
   * Redis which version is current on every call (code stays cached).
   */
  private readonly trustCache: boolean

  constructor (redis: RedisClient, subscriber: RedisClient | null = null, opts: { timeoutMs?: number, idempotencyTtlSeconds?: number, staleSeconds?: number } = {}) {
    this.trustCache = !(redis instanceof Cluster)
    this.timeoutMs = opts.timeoutMs ?? 5000
    this.staleMs = (opts.staleSeconds ?? 0) * 1000
    this.idempotencyTtl = opts.idempotencyTtlSeconds ?? 86400
    redis.defineCommand('hearthUpload', { numberOfKeys: 6, lua: UPLOAD })
    redis.defineCommand('hearthDelete', { numberOfKeys: 5, lua: DELETE })
    this.redis = redis as ScriptedRedis
    if (subscriber !== null) {
      subscriber.on('message', (_channel: string, path: string) => {
        this.invalidate(path)
        for (const listener of this.changeListeners) listener(path)
      })
      subscriber.on('ready', () => { this.subscribe(subscriber) })
      for (const event of ['close', 'end', 'reconnecting']) subscriber.on(event, () => this.lose())
      if (subscriber.status === 'ready') this.subscribe(subscriber)
    }
  }

  private subscribe (subscriber: RedisClient): void {
    // Trusted only once Redis has confirmed the subscription: from then on no
    // change can happen without this daemon hearing of it.
    subscriber.subscribe(INVALIDATE_CHANNEL).then(() => {
      this.epoch++
      this.live = true
    }, () => this.lose())
  }

  private lose (): void {
    if (this.live) this.lostAt = Date.now()
    this.live = false
    this.epoch++
    this.latest.clear()
  }

  /** Told of every path whose versions changed on any daemon (an upload, a delete), as the invalidation arrives. */
  onChange (listener: (path: string) => void): void {
    this.changeListeners.push(listener)
  }

  private invalidate (path: string): void {
    this.epoch++
    this.latest.delete(path)
    this.lastKnown.delete(path)
    this.code.dropPath(path)
  }

  /**
   * Stores a new version. With an idempotency key, a second upload with the
   * same key (within IDEMPOTENCY_TTL) answers the first one's outcome and
   * stores nothing: a client that did not hear the answer can simply retry.
   */
  async upload (path: string, language: Language, code: string, idempotencyKey?: string, packages?: { dependencies: VersionDependencies, lock: string }): Promise<UploadOutcome> {
    const k = functionKeys(path)
    const size = Buffer.byteLength(code)
    const sha256 = createHash('sha256').update(code).digest('hex')
    const deps = packages === undefined ? '' : JSON.stringify(packages.dependencies)
    const fingerprint = idempotencyKey === undefined ? '' : createHash('sha256').update(language).update('\0').update(code).update('\0').update(deps).digest('hex')
    const record = k.idempotency(idempotencyKey === undefined ? '-' : createHash('sha256').update(idempotencyKey).digest('hex'))
    const hint = idempotencyKey === undefined
      ? 'Send an Idempotency-Key header to make a retry safe, or look at the versions (GET /functions/' + path + ').'
      : 'Retry with the same Idempotency-Key: the answer will be this upload\'s outcome.'
    const [version, created, replayed, first] = await this.guarded(async () => await this.redis.hearthUpload(
      k.seq, k.versions, k.code, k.meta, record, k.locks, code, language, size, sha256, INVALIDATE_CHANNEL, path, fingerprint, this.idempotencyTtl,
      deps, packages?.lock ?? ''
    ), { write: 'the upload', hint, key: k.seq })
    if (Number(replayed) === 1 && first !== fingerprint) {
      throw new HearthError('idempotency_key_reused', 'this Idempotency-Key was used for another upload (other code or language) to this path', { field: 'Idempotency-Key' })
    }
    await this.guarded(async () => await this.redis.zadd(INDEX_KEY, 0, path))
    return { version: Number(version), language, size, sha256, created: Number(created), replayed: Number(replayed) === 1 }
  }

  /**
   * The latest version, or the given one. From the cache while the
   * invalidation subscription is live; otherwise one round trip to learn which
   * version is current (or whether the pinned one still exists), so an upload
   * or delete on any daemon is what every daemon runs on its next call.
   */
  async resolve (path: string, version?: number): Promise<StoredFunction> {
    if (this.live && this.trustCache) {
      const v = version ?? this.latest.get(path)
      const hit = v === undefined ? undefined : this.code.get(`${path}@${v}`)
      if (hit !== undefined) return hit
    }
    try {
      return await this.resolveFromRedis(path, version)
    } catch (err) {
      const stale = (err as HearthError).code === 'store_unavailable' ? this.stale(path, version) : null
      if (stale === null) throw err
      return stale
    }
  }

  /**
   * STALE_IF_REDIS_DOWN_SECONDS: while Redis is unreachable, the version last
   * known to be current (or a pinned version still cached) is served for that
   * long after Redis last confirmed it. An upload or delete made meanwhile
   * through another daemon is not seen: the answer says how stale it is.
   */
  private stale (path: string, version?: number): StoredFunction | null {
    if (this.staleMs <= 0) return null
    const known = this.lastKnown.get(path)
    if (known === undefined) return null
    const fn = version === undefined || version === known.fn.version ? known.fn : this.code.get(`${path}@${version}`)
    if (fn === undefined) return null
    const age = Date.now() - (known.at ?? (this.live ? Date.now() : this.lostAt))
    return age <= this.staleMs ? { ...fn, staleSeconds: Math.floor(age / 1000) } : null
  }

  private async resolveFromRedis (path: string, version?: number): Promise<StoredFunction> {
    const k = functionKeys(path)
    const epoch = this.epoch
    return await this.guarded(async () => {
      let v = version
      if (v === undefined) {
        const latest = await this.redis.zrange(k.versions, '-1', '-1')
        if (latest.length === 0) throw new HearthError('function_not_found', `no function at path ${JSON.stringify(path)}`, { path })
        v = Number(latest[0])
      } else if (await this.redis.zscore(k.versions, String(v)) === null) {
        const any = await this.redis.zcard(k.versions)
        throw any === 0
          ? new HearthError('function_not_found', `no function at path ${JSON.stringify(path)}`, { path })
          : new HearthError('version_not_found', `no version ${v} of ${JSON.stringify(path)}`, { path, version: v })
      }
      const id = `${path}@${v}`
      let fn = this.code.get(id)
      if (fn === undefined) {
        const [code, meta] = await this.redis.pipeline().hget(k.code, String(v)).hget(k.meta, String(v)).exec() ?? []
        if (code?.[1] == null || meta?.[1] == null) throw new HearthError('version_not_found', `no version ${v} of ${JSON.stringify(path)}`, { path, version: v })
        fn = { path, code: code[1] as string, ...parseMeta(v, meta[1] as string) }
      }
      if (this.epoch === epoch) {
        this.code.set(path, id, fn)
        if (version === undefined && this.live) {
          this.latest.set(path, v, pathBytes(path))
        }
        if (version === undefined && this.staleMs > 0) {
          this.lastKnown.set(path, { fn, at: this.live ? null : Date.now() }, pathBytes(path) + textBytes(fn.code))
        }
      }
      return fn
    })
  }

  /** The lock of a version's dependencies, to install exactly its set again. */
  async lock (path: string, version: number): Promise<string> {
    const lock = await this.guarded(async () => await this.redis.hget(functionKeys(path).locks, String(version)))
    if (lock === null) throw new HearthError('version_not_found', `no lock for version ${version} of ${JSON.stringify(path)}`, { path, version })
    return lock
  }

  async versions (path: string): Promise<VersionMeta[]> {
    const k = functionKeys(path)
    return await this.guarded(async () => {
      const meta = await this.redis.hgetall(k.meta)
      const list = Object.entries(meta).map(([v, json]) => parseMeta(Number(v), json)).sort((a, b) => a.version - b.version)
      if (list.length === 0) throw new HearthError('function_not_found', `no function at path ${JSON.stringify(path)}`, { path })
      return list
    })
  }

  /** Paths in lexical order after `cursor`, `limit` at a time; only those that start with `prefix`. */
  async list (cursor: string, limit: number, prefix = ''): Promise<{ functions: FunctionSummary[], next: string | null }> {
    return await this.guarded(async () => {
      const after = cursor > prefix ? cursor : ''
      const start = after !== '' ? `(${after}` : prefix !== '' ? `[${prefix}` : '-'
      // Paths are ASCII: every path that starts with the prefix sorts before prefix + U+00FF.
      const end = prefix === '' ? '+' : `(${prefix}\u00ff`
      const paths = await this.redis.zrangebylex(INDEX_KEY, start, end, 'LIMIT', 0, limit + 1)
      const page = paths.slice(0, limit)
      const functions = await Promise.all(page.map(async (path) => {
        const k = functionKeys(path)
        const [latest, count] = await Promise.all([this.redis.zrange(k.versions, '-1', '-1'), this.redis.zcard(k.versions)])
        const v = latest[0]
        const meta = v === undefined ? null : await this.redis.hget(k.meta, v)
        return v === undefined || meta === null ? null : { path, latest: Number(v), versions: count, language: parseMeta(Number(v), meta).language }
      }))
      return { functions: functions.filter((f): f is FunctionSummary => f !== null), next: paths.length > limit ? (page.at(-1) ?? null) : null }
    })
  }

  /** Deletes one version or all; returns how many were deleted. Version numbers are never reused. */
  async delete (path: string, version?: number): Promise<number> {
    const k = functionKeys(path)
    const hint = 'Deleting again is safe: it answers 404 when the first delete was done.'
    return await this.guarded(async () => {
      const args = version === undefined ? [] : [String(version)]
      const [deleted, remaining] = await this.redis.hearthDelete(k.seq, k.versions, k.code, k.meta, k.locks, INVALIDATE_CHANNEL, path, ...args)
      if (remaining === 0) await this.redis.zrem(INDEX_KEY, path)
      if (deleted === 0) {
        throw version === undefined
          ? new HearthError('function_not_found', `no function at path ${JSON.stringify(path)}`, { path })
          : new HearthError('version_not_found', `no version ${version} of ${JSON.stringify(path)}`, { path, version })
      }
      this.invalidate(path)
      return deleted
    }, { write: 'the delete', hint, key: k.seq })
  }

  /**
   * Redis failures become store_unavailable (nothing was done; retry) or, for
   * a write Redis may have applied without answering, store_outcome_unknown.
   */
  private async guarded<T> (work: () => Promise<T>, write?: { write: string, hint: string, key: string }): Promise<T> {
    // A write is not sent while its connection is known to be down: the answer
    // is then surely "not done" (connection.ts: reachable).
    if (write !== undefined && !reachable(this.redis, write.key)) {
      throw new HearthError('store_unavailable', 'the function store is unavailable: Redis is not reachable')
    }
    try {
      return await work()
    } catch (err) {
      if (err instanceof HearthError) throw err
      const { reason, maybeDone } = storeFailure(err as Error, this.timeoutMs)
      if (write !== undefined && maybeDone) {
        throw new HearthError('store_outcome_unknown', `${write.write} was sent to Redis, but ${reason}: it may or may not have been done. ${write.hint}`)
      }
      throw new HearthError('store_unavailable', `the function store is unavailable: ${reason}`)
    }
  }

  async ping (): Promise<boolean> {
    try {
      return await this.redis.ping() === 'PONG'
    } catch {
      return false
    }
  }
}

function parseMeta (version: number, json: string): VersionMeta {
  const m = JSON.parse(json) as Omit<VersionMeta, 'version'>
  return { version, language: m.language, size: m.size, sha256: m.sha256, created: m.created, ...(m.dependencies === undefined ? {} : { dependencies: m.dependencies }) }
}
