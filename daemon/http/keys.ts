// The admin routes: POST /keys (the secret is shown once), GET /keys (never the
// secrets), DELETE /keys/{id}. Every change is in the audit log.
import { SCOPES, type KeyInfo, type KeySpec, type Scope } from '../auth/index.js'
import { invalidField } from '../errors.js'
import { checkRequest } from '../openapi/requests.js'
import type { HttpDeps } from './deps.js'
import type { Exchange } from './exchange.js'
import { parseJsonBody, PATH_MAX } from './validate.js'

function optionalNumber (fields: Record<string, unknown>, name: string, min: number, integer: boolean): number | null {
  const v = fields[name]
  if (v === undefined || v === null) return null
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw invalidField(name, `must be ${integer ? 'an integer' : 'a number'} of at least ${min}`)
  }
  return v
}

function expiry (v: unknown): number | null {
  if (v === undefined || v === null) return null
  const at = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) / 1000 : NaN
  if (!Number.isFinite(at)) throw invalidField('expires_at', 'must be an ISO 8601 date or unix seconds')
  if (at <= Date.now() / 1000) throw invalidField('expires_at', 'must be in the future')
  return Math.floor(at)
}

export function parseKeySpec (fields: Record<string, unknown>): KeySpec {
  const name = fields.name
  if (typeof name !== 'string' || name.trim() === '' || name.length > 100) throw invalidField('name', 'must be a string of 1 to 100 characters')
  const scopes = fields.scopes
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => (SCOPES as readonly unknown[]).includes(s))) {
    throw invalidField('scopes', `must be a non-empty list of ${SCOPES.join(', ')}`)
  }
  const prefix = fields.prefix ?? ''
  if (typeof prefix !== 'string' || prefix.length > PATH_MAX || (prefix !== '' && (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]*)*$/.test(prefix) || prefix.split('/').some((s) => s === '.' || s === '..')))) {
    throw invalidField('prefix', 'must be the start of a function path (letters, digits, _ . - and /), such as "team-a/"')
  }
  const ratePerSecond = optionalNumber(fields, 'rate_per_second', 0.001, false)
  const burst = optionalNumber(fields, 'burst', 1, true)
  if (burst !== null && ratePerSecond === null) throw invalidField('burst', 'needs rate_per_second')
  return {
    name: name.trim(),
    scopes: [...new Set(scopes as Scope[])],
    prefix,
    ratePerSecond,
    burst: ratePerSecond === null ? null : burst ?? Math.max(1, Math.ceil(ratePerSecond)),
    maxConcurrency: optionalNumber(fields, 'max_concurrency', 1, true),
    expiresAt: expiry(fields.expires_at)
  }
}

/** A key as the API shows it: snake_case, dates as ISO 8601, never a secret. */
export function keyBody (k: KeyInfo): Record<string, unknown> {
  return {
    id: k.id,
    name: k.name,
    scopes: k.scopes,
    prefix: k.prefix,
    rate_per_second: k.ratePerSecond,
    burst: k.burst,
    max_concurrency: k.maxConcurrency,
    expires_at: k.expiresAt === null ? null : new Date(k.expiresAt * 1000).toISOString(),
    created: new Date(k.created * 1000).toISOString()
  }
}

export async function createKey (x: Exchange, body: Promise<Buffer>, deps: HttpDeps): Promise<void> {
  const fields = parseJsonBody(await body)
  checkRequest('KeySpec', fields)
  const spec = parseKeySpec(fields)
  const { info, key } = await deps.auth.keys.create(spec)
  x.audit('key.create', { key_id: info.id, key_name: info.name, scopes: info.scopes, prefix: info.prefix })
  x.json(201, JSON.stringify({ ...keyBody(info), key }))
}

export async function listKeys (x: Exchange, deps: HttpDeps): Promise<void> {
  x.json(200, JSON.stringify({ keys: (await deps.auth.keys.list()).map(keyBody) }))
}

export async function revokeKey (x: Exchange, deps: HttpDeps): Promise<void> {
  const id = decodeURIComponent(x.url.slice('/keys/'.length))
  const info = await deps.auth.keys.revoke(id)
  x.audit('key.revoke', { key_id: info.id, key_name: info.name })
  x.json(200, JSON.stringify({ revoked: keyBody(info) }))
}
