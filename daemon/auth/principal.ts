// Who a request is: its scopes, the path prefix it may touch, its quotas.
import { HearthError } from '../errors.js'

/** `run-now` (ad-hoc code, the most dangerous) is never implied by another scope; no scope implies another. */
export const SCOPES = ['run', 'run-now', 'upload', 'read', 'delete', 'metrics', 'admin'] as const
export type Scope = typeof SCOPES[number]

export interface Quotas {
  /** token bucket: tokens per second, and its size */
  readonly ratePerSecond: number | null
  readonly burst: number | null
  readonly maxConcurrency: number | null
}

export interface Principal {
  /** the key's id, 'admin' for ADMIN_TOKEN, null when AUTH=off */
  readonly id: string | null
  readonly name: string | null
  readonly scopes: ReadonlySet<Scope>
  /** functions it may see and touch: paths that start with this ('' for all) */
  readonly prefix: string
  readonly quotas: Quotas
}

const NO_QUOTAS: Quotas = { ratePerSecond: null, burst: null, maxConcurrency: null }

/** AUTH=off: anyone who reaches the port may do anything. */
export const ANYONE: Principal = { id: null, name: null, scopes: new Set(SCOPES), prefix: '', quotas: NO_QUOTAS }

/** ADMIN_TOKEN: the admin scope, and nothing else. */
export const ADMIN: Principal = { id: 'admin', name: 'ADMIN_TOKEN', scopes: new Set(['admin']), prefix: '', quotas: NO_QUOTAS }

export function requireScope (p: Principal, scope: Scope): void {
  if (!p.scopes.has(scope)) {
    throw new HearthError('forbidden', `this key lacks the ${scope} scope`, { scope })
  }
}

/** A function path the principal may touch, or 403 naming the prefix. */
export function requirePath (p: Principal, path: string): void {
  if (p.prefix !== '' && !path.startsWith(p.prefix)) {
    throw new HearthError('forbidden', `this key may only touch functions under ${JSON.stringify(p.prefix)}`, { prefix: p.prefix })
  }
}
