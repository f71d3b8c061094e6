// Functions and their versions in Redis, with a local cache of immutable code.
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Language } from '../config.js'
import { HearthError } from '../errors.js'
import { functionKeys, INDEX_KEY } from './keys.js'
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
  hearthUpload: (seq: string, versions: string, code: string, meta: string, codeArg: string, language: string, size: number, sha: string) => Promise<[number, number]>
  hearthDelete: (seq: string, versions: string, code: string, meta: string, ...version: string[]) => Promise<[number, number]>
}

const CODE_CACHE_MAX = 1024

/** Redis errors become store_unavailable: the caller may retry; nothing was half-done. */
async function guarded<T> (work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (err instanceof HearthError) throw err
    throw new HearthError('store_unavailable', `the function store is unavailable: ${(err as Error).message}`)
  }
}

export class FunctionStore {
  private readonly redis: ScriptedRedis
  // path@version → function: versions never change once written, so a cached
  // entry is only ever wrong by having been deleted, which every call re-checks.
  private readonly cache = new Map<string, StoredFunction>()

  constructor (redis: Redis) {
    redis.defineCommand('hearthUpload', { numberOfKeys: 4, lua: UPLOAD })
    redis.defineCommand('hearthDelete', { numberOfKeys: 4, lua: DELETE })
    this.redis = redis as ScriptedRedis
  }

  async upload (path: string, language: Language, code: string): Promise<VersionMeta> {
    const k = functionKeys(path)
    const size = Buffer.byteLength(code)
    const sha256 = createHash('sha256').update(code).digest('hex')
    return await guarded(async () => {
      const [version, created] = await this.redis.hearthUpload(k.seq, k.versions, k.code, k.meta, code, language, size, sha256)
      await this.redis.zadd(INDEX_KEY, 0, path)
      return { version: Number(version), language, size, sha256, created: Number(created) }
    })
  }

  /**
   * The latest version, or the given one. One round trip when the code is
   * cached (which version is current, or whether the pinned one still exists),
   * so an upload or delete on any daemon is seen by the next call everywhere.
   */
  async resolve (path: string, version?: number): Promise<StoredFunction> {
    const k = functionKeys(path)
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
      const hit = this.cache.get(id)
      if (hit !== undefined) return hit
      const [code, meta] = await this.redis.pipeline().hget(k.code, String(v)).hget(k.meta, String(v)).exec() ?? []
      if (code?.[1] == null || meta?.[1] == null) throw new HearthError('version_not_found', `no version ${v} of ${JSON.stringify(path)}`, { path, version: v })
      const fn: StoredFunction = { path, code: code[1] as string, ...parseMeta(v, meta[1] as string) }
      this.cache.set(id, fn)
      if (this.cache.size > CODE_CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string)
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
      const [deleted, remaining] = await this.redis.hearthDelete(k.seq, k.versions, k.code, k.meta, ...args)
      if (remaining === 0) await this.redis.zrem(INDEX_KEY, path)
      if (deleted === 0) {
        throw version === undefined
          ? new HearthError('function_not_found', `no function at path ${JSON.stringify(path)}`, { path })
          : new HearthError('version_not_found', `no version ${version} of ${JSON.stringify(path)}`, { path, version })
      }
      for (const id of this.cache.keys()) if (id.startsWith(`${path}@`)) this.cache.delete(id)
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
