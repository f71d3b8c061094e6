// Who is calling: AUTH=off lets anyone in; AUTH=on wants `Authorization:
// Bearer <key>`, a key from the KeyStore or ADMIN_TOKEN.
import { timingSafeEqual } from 'node:crypto'
import type { RedisClient } from '../store/connection.js'
import { KeyStore, sha256, unauthorized } from './keys.js'
import { ADMIN, ANYONE, type Principal } from './principal.js'

export { KeyStore } from './keys.js'
export type { KeyInfo, KeySpec } from './keys.js'
export { requirePath, requireScope, SCOPES, type Principal, type Scope } from './principal.js'

export class Authenticator {
  readonly keys: KeyStore
  private readonly adminHash: Buffer | null

  constructor (readonly enabled: boolean, adminToken: string | null, redis: RedisClient, redisTimeoutMs: number, warn: (msg: string) => void = () => {}) {
    this.keys = new KeyStore(redis, redisTimeoutMs, warn)
    this.adminHash = adminToken === null ? null : sha256(adminToken)
  }

  /** The principal of an Authorization header's value ('' when absent). */
  async authenticate (header: string): Promise<Principal> {
    if (!this.enabled) return ANYONE
    const m = /^Bearer +(\S+) *$/i.exec(header)
    if (m === null) throw unauthorized(header === '' ? 'this route needs Authorization: Bearer <key>' : 'the Authorization header is not "Bearer <key>"')
    const token = m[1] as string
    const given = sha256(token)
    if (this.adminHash !== null && timingSafeEqual(this.adminHash, given)) return ADMIN
    return await this.keys.authenticate(token)
  }
}
