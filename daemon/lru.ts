// A map bounded by the bytes its entries are charged, least recently used out
// first: the daemon's caches of code (daemon/store/code-cache.ts, the compiled
// code of daemon/compile/) and the function store's maps of current versions.
// Bounded by entries instead, a cache of code held anything from kilobytes to
// hundreds of megabytes, and a workload with more functions in rotation than
// the count missed on every call.

/**
 * The bytes strings may take in memory, for an entry's charge: two per UTF-16
 * unit (V8 keeps Latin-1 strings in one, so this is a bound, not a measure).
 */
export function textBytes (...texts: string[]): number {
  let units = 0
  for (const text of texts) units += text.length
  return 2 * units
}

export class ByteLru<K, V> {
  private readonly maxBytes: number
  private readonly onEvict: ((key: K, value: V) => void) | undefined
  /** least recently used first */
  private readonly entries = new Map<K, { value: V, bytes: number }>()
  private used = 0

  /** `onEvict`: told of each entry that made room for another (not of deletes). */
  constructor (maxBytes: number, onEvict?: (key: K, value: V) => void) {
    this.maxBytes = maxBytes
    this.onEvict = onEvict
  }

  get size (): number {
    return this.entries.size
  }

  get bytes (): number {
    return this.used
  }

  get (key: K): V | undefined {
    const e = this.entries.get(key)
    if (e === undefined) return undefined
    this.entries.delete(key) // the most recently used now
    this.entries.set(key, e)
    return e.value
  }

  /** Keeps `value`, charged `bytes`, unless that alone is over the bound (false); the least recently used go while over it. */
  set (key: K, value: V, bytes: number): boolean {
    this.delete(key)
    if (bytes > this.maxBytes) return false
    this.entries.set(key, { value, bytes })
    this.used += bytes
    for (const [oldest, e] of this.entries) {
      if (this.used <= this.maxBytes) break
      this.delete(oldest)
      this.onEvict?.(oldest, e.value)
    }
    return true
  }

  clear (): void {
    this.entries.clear()
    this.used = 0
  }

  delete (key: K): void {
    const e = this.entries.get(key)
    if (e === undefined) return
    this.entries.delete(key)
    this.used -= e.bytes
  }
}
