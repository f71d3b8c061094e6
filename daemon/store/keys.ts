// Redis keys. Everything of one function shares the hash tag {path}, so every
// per-function operation touches one slot and works unchanged on Redis Cluster.
export const PREFIX = 'hearth:'

export interface FunctionKeys {
  readonly seq: string // last version handed out; never deleted, so versions are never reused
  readonly versions: string // zset: member = score = version
  readonly code: string // hash: version → code
  readonly meta: string // hash: version → JSON {language, size, sha256, created, dependencies?}
  readonly locks: string // hash: version → its dependencies' lock (package-lock.json), when it has some
  /** an upload's Idempotency-Key record: JSON {version, created, request}, with a TTL */
  readonly idempotency: (keyHash: string) => string
}

export function functionKeys (path: string): FunctionKeys {
  const tag = `${PREFIX}fn:{${path}}`
  return { seq: `${tag}:seq`, versions: `${tag}:versions`, code: `${tag}:code`, meta: `${tag}:meta`, locks: `${tag}:locks`, idempotency: (h) => `${tag}:idem:${h}` }
}

/** zset of every path with at least one version, score 0, read in lexical order. */
export const INDEX_KEY = `${PREFIX}index`

/** Pub/sub channel: a path whose versions changed (upload, delete). */
export const INVALIDATE_CHANNEL = `${PREFIX}invalidate`
