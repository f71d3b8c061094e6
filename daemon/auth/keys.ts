// API keys in Redis, shared by every daemon: only a hash of each secret is
// stored. A key reads `hearth_<id>_<secret>`: the id finds the record, the
// secret's SHA-256 is compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { RedisClient } from '../store/connection.js'
import { HearthError } from '../errors.js'
import { storeFailure } from '../store/function-store.js'
import { PREFIX } from '../store/keys.js'
import type { Principal, Quotas, Scope } from './principal.js'

const KEY_FORMAT = /^hearth_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/
// One hash tag for the index and every record: creating and revoking a key
// are one MULTI each, which a Redis Cluster runs only within one slot.
const INDEX = `${PREFIX}{apikeys}:index`
const record = (id: string): string => `${PREFIX}{apikeys}:key:${id}`
// Where keys lived before the hash tag (single Redis only: on a cluster the old MULTI failed).
const LEGACY_INDEX = `${PREFIX}apikeys`
const legacyRecord = (id: string): string => `${PREFIX}apikey:${id}`
// Compared against when there is no record: an unknown key costs what a wrong one does.
const DUMMY = createHash('sha256').update('hearth: no such key').digest()

export interface KeySpec extends Quotas {
  readonly name: string
  readonly scopes: readonly Scope[]
  readonly prefix: string
  /** unix seconds, or null for never */
  readonly expiresAt: number | null
}

export interface KeyInfo extends KeySpec {
  readonly id: string
  readonly created: number
}

export function sha256 (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

function toFields (id: string, spec: KeySpec, hash: Buffer, created: number): Record<string, string> {
  return {
    id,
    hash: hash.toString('hex'),
    spec: JSON.stringify({ ...spec, created })
  }
}

function toInfo (fields: Record<string, string>): KeyInfo {
  const spec = JSON.parse(fields.spec ?? '{}') as KeySpec & { created: number }
  return { ...spec, id: fields.id ?? '' }
}

/** Keys last seen valid, by id and secret's hash: used only while Redis cannot be asked. */
const LAST_KNOWN_MAX = 10_000

export class KeyStore {
  private readonly lastKnown = new Map<string, KeyInfo>()
  private away = false

  constructor (private readonly redis: RedisClient, private readonly timeoutMs: number, private readonly warn: (msg: string) => void = () => {}) {}

  /** Redis failures become store_unavailable: keys cannot be checked or changed. */
  private async guarded<T> (work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (err) {
      if (err instanceof HearthError) throw err
      throw new HearthError('store_unavailable', `API keys are in Redis, which is unavailable: ${storeFailure(err as Error, this.timeoutMs).reason}`)
    }
  }

  /**
   * Moves keys made by an earlier hearth to the hash-tagged names. Idempotent
   * (every step can be repeated), so daemons starting together, or a start
   * cut short, leave no key behind. Returns how many were moved.
   */
  async migrateLegacy (): Promise<number> {
    const ids = await this.redis.smembers(LEGACY_INDEX)
    for (const id of ids) {
      if (await this.redis.exists(legacyRecord(id)) === 1) await this.redis.renamenx(legacyRecord(id), record(id))
      await this.redis.sadd(INDEX, id)
      await this.redis.srem(LEGACY_INDEX, id)
    }
    return ids.length
  }

  /** A new key: its record, and the secret, which is never stored nor shown again. */
  async create (spec: KeySpec): Promise<{ info: KeyInfo, key: string }> {
    const id = randomBytes(8).toString('hex')
    const secret = randomBytes(32).toString('base64url')
    const created = Math.floor(Date.now() / 1000)
    await this.guarded(async () => await this.redis.multi().hset(record(id), toFields(id, spec, sha256(secret), created)).sadd(INDEX, id).exec())
    return { info: { ...spec, id, created }, key: `hearth_${id}_${secret}` }
  }

  async list (): Promise<KeyInfo[]> {
    const records = await this.guarded(async () => {
      const ids = await this.redis.smembers(INDEX)
      return await Promise.all(ids.map(async (id) => await this.redis.hgetall(record(id))))
    })
    return records.filter((r) => r.id !== undefined).map(toInfo).sort((a, b) => a.created - b.created)
  }

  /** Revokes a key: every daemon refuses it from its next request. */
  async revoke (id: string): Promise<KeyInfo> {
    const fields = /^[0-9a-f]{16}$/.test(id) ? await this.guarded(async () => await this.redis.hgetall(record(id))) : {}
    if (fields.id === undefined) throw new HearthError('key_not_found', `no key with id ${JSON.stringify(id)}`, { id })
    await this.guarded(async () => await this.redis.multi().del(record(id)).srem(INDEX, id).exec())
    return toInfo(fields)
  }

  /** The principal a bearer key stands for; unauthorized for a missing, unknown, wrong, expired or revoked one. */
  async authenticate (key: string): Promise<Principal> {
    const m = KEY_FORMAT.exec(key)
    const id = m?.[1] ?? '0000000000000000'
    const given = sha256(m?.[2] ?? key)
    const seen = `${id}:${given.toString('hex')}`
    let fields: Record<string, string>
    try {
      fields = await this.guarded(async () => await this.redis.hgetall(record(id)))
      this.away = false
    } catch (err) {
      // Redis is away: a key seen valid before keeps working (nothing can be
      // revoked meanwhile: revoking needs Redis too); an unseen one cannot be checked.
      const known = this.lastKnown.get(seen)
      if (known === undefined) throw err
      if (!this.away) this.warn('Redis is unreachable: API keys are checked against the ones this daemon last saw valid')
      this.away = true
      return this.principal(known)
    }
    const stored = fields.hash === undefined ? DUMMY : Buffer.from(fields.hash, 'hex')
    const match = stored.length === given.length && timingSafeEqual(stored, given)
    if (m === null || fields.hash === undefined || !match) {
      this.lastKnown.delete(seen)
      throw unauthorized('the key is not valid (unknown, wrong or revoked)')
    }
    const info = toInfo(fields)
    if (this.lastKnown.size >= LAST_KNOWN_MAX) this.lastKnown.delete(this.lastKnown.keys().next().value as string)
    this.lastKnown.set(seen, info)
    return this.principal(info)
  }

  private principal (info: KeyInfo): Principal {
    if (info.expiresAt !== null && info.expiresAt <= Date.now() / 1000) throw unauthorized('the key has expired')
    return {
      id: info.id,
      name: info.name,
      scopes: new Set(info.scopes),
      prefix: info.prefix,
      quotas: { ratePerSecond: info.ratePerSecond, burst: info.burst, maxConcurrency: info.maxConcurrency }
    }
  }
}

export function unauthorized (why: string): HearthError {
  return new HearthError('unauthorized', why)
}
