// Functions and their versions in Redis, with a local cache of immutable code.
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Language } from '../config.js'
import { HearthError } from '../errors.js'
import { functionKeys, INDEX_KEY, INVALIDATE_CHANNEL } from './keys.js'
import { DELETE, UPLOAD } from './scripts.js'

export interface VersionMeta {
  readonly version: number
  readonly language: Language
  readonly size: number
  readonly sha256: string
  readonly created: number // unix seconds
}

export interface StoredFunction extends VersionMeta {
  readonly path: string
  readonly code: string
}

export interface FunctionSummary {
  readonly path: string
  readonly latest: number
  readonly versions: number
  readonly language: Language
}

type ScriptedRedis = Redis & {
  hearthUpload: (seq: string, versions: string, code: string, meta: string, codeArg: string, language: string, size: number, sha: string, channel: string, path: string) => Promise<[number, number]>
  hearthDelete: (seq: string, versions: string, code: string, meta: string, channel: string, path: string, ...version: string[]) => Promise<[number, number]>
}

const CODE_CACHE_MAX = 1024
const LATEST_CACHE_MAX = 16384

/** Redis errors become store_unavailable: the caller may retry; nothing was half-done. */
async function guarded<T> (work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (err instanceof HearthError) throw err
    throw new HearthError('store_unavailable', `the function store is unavailable: ${(err as Error).message}`)
  }
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
  private readonly code = new Map<string, StoredFunction>() // path@version → function (immutable)
  private readonly latest = new Map<string, number>() // path → current version
  private live = false
  // Bumped by every invalidation and by every change of subscription state: a
  // Redis answer that raced one of them is used but not cached.
  private epoch = 0

  constructor (redis: Redis, subscriber: Redis | null = null) {
    redis.defineCommand('hearthUpload', { numberOfKeys: 4, lua: UPLOAD })
    redis.defineCommand('hearthDelete', { numberOfKeys: 4, lua: DELETE })
    this.redis = redis as ScriptedRedis
    if (subscriber !== null) {
      subscriber.on('message', (_channel: string, path: string) => this.invalidate(path))
      subscriber.on('ready', () => { this.subscribe(subscriber) })
      for (const event of ['close', 'end', 'reconnecting']) subscriber.on(event, () => this.lose())
      if (subscriber.status === 'ready') this.subscribe(subscriber)
    }
  }

  private subscribe (subscriber: Redis): void {
    // Trusted only once Redis has confirmed the subscription: from then on no
    // change can happen without this daemon hearing of it.
    subscriber.subscribe(INVALIDATE_CHANNEL).then(() => {
      this.epoch++
      this.live = true
    }, () => this.lose())
  }

  private lose (): void {
    this.live = false
    this.epoch++
    this.latest.clear()
  }

  private invalidate (path: string): void {
    this.epoch++
    this.latest.delete(path)
    for (const id of this.code.keys()) if (id.startsWith(`${path}@`)) this.code.delete(id)
  }

  /** Whether calls are served from the cache (the invalidation subscription is live). */
  get cacheLive (): boolean {
    return this.live
  }

  async upload (path: string, language: Language, code: string): Promise<VersionMeta> {
    const k = functionKeys(path)
    const size = Buffer.byteLength(code)
    const sha256 = createHash('sha256').update(code).digest('hex')
    return await guarded(async () => {
      const [version, created] = await this.redis.hearthUpload(k.seq, k.versions, k.code, k.meta, code, language, size, sha256, INVALIDATE_CHANNEL, path)
      await this.redis.zadd(INDEX_KEY, 0, path)
      return { version: Number(version), language, size, sha256, created: Number(created) }
    })
  }

  /**
   * The latest version, or the given one. From the cache while the
   * invalidation subscription is live; otherwise one round trip to learn which
   * version is current (or whether the pinned one still exists), so an upload
   * or delete on any daemon is what every daemon runs on its next call.
   */
  async resolve (path: string, version?: number): Promise<StoredFunction> {
    if (this.live) {
      const v = version ?? this.latest.get(path)
      const hit = v === undefined ? undefined : this.code.get(`${path}@${v}`)
      if (hit !== undefined) return hit
    }
    const k = functionKeys(path)
    const epoch = this.epoch
    return await guarded(async () => {
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
        this.code.set(id, fn)
        if (this.code.size > CODE_CACHE_MAX) this.code.delete(this.code.keys().next().value as string)
        if (version === undefined && this.live) {
          this.latest.set(path, v)
          if (this.latest.size > LATEST_CACHE_MAX) this.latest.delete(this.latest.keys().next().value as string)
        }
      }
      return fn
    })
  }

  async versions (path: string): Promise<VersionMeta[]> {
    const k = functionKeys(path)
    return await guarded(async () => {
      const meta = await this.redis.hgetall(k.meta)
      const list = Object.entries(meta).map(([v, json]) => parseMeta(Number(v), json)).sort((a, b) => a.version - b.version)
      if (list.length === 0) throw new HearthError('function_not_found', `no function at path ${JSON.stringify(path)}`, { path })
      return list
    })
  }

  /** Paths in lexical order after `cursor`, `limit` at a time. */
  async list (cursor: string, limit: number): Promise<{ functions: FunctionSummary[], next: string | null }> {
    return await guarded(async () => {
      const start = cursor === '' ? '-' : `(${cursor}`
      const paths = await this.redis.zrangebylex(INDEX_KEY, start, '+', 'LIMIT', 0, limit + 1)
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
    return await guarded(async () => {
      const args = version === undefined ? [] : [String(version)]
      const [deleted, remaining] = await this.redis.hearthDelete(k.seq, k.versions, k.code, k.meta, INVALIDATE_CHANNEL, path, ...args)
      if (remaining === 0) await this.redis.zrem(INDEX_KEY, path)
      if (deleted === 0) {
        throw version === undefined
          ? new HearthError('function_not_found', `no function at path ${JSON.stringify(path)}`, { path })
          : new HearthError('version_not_found', `no version ${version} of ${JSON.stringify(path)}`, { path, version })
      }
      this.invalidate(path)
      return deleted
    })
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
  return { version, language: m.language, size: m.size, sha256: m.sha256, created: m.created }
}
