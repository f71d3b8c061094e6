// The code of stored function versions, cached by the daemon (versions never
// change, so an entry is only ever dropped to make room or because its path
// was changed or deleted). Bounded by bytes, not entries: 1,024 entries held
// from a few KB (small functions) to 256 MB (CODE_MAX_SIZE each), and a
// daemon calling more functions than that in rotation fetched each call's code
// from Redis again (found with the bench's 2,000 functions round-robin).

/** What an entry is charged: two bytes per UTF-16 unit of its code (a bound), and this for the rest. */
const ENTRY_OVERHEAD = 512

export class CodeCache<T extends { readonly code: string }> {
  private readonly maxBytes: number
  /** least recently used first */
  private readonly entries = new Map<string, { value: T, path: string, bytes: number }>()
  private readonly byPath = new Map<string, Set<string>>()
  private used = 0

  constructor (maxBytes: number) {
    this.maxBytes = maxBytes
  }

  get size (): number {
    return this.entries.size
  }

  get bytes (): number {
    return this.used
  }

  get (id: string): T | undefined {
    const e = this.entries.get(id)
    if (e === undefined) return undefined
    this.entries.delete(id) // most recently used now
    this.entries.set(id, e)
    return e.value
  }

  /** Caches `value` as `id`, a version of `path`; the least recently used go while over the bound. */
  set (path: string, id: string, value: T): void {
    this.remove(id)
    const bytes = 2 * value.code.length + ENTRY_OVERHEAD
    if (bytes > this.maxBytes) return
    this.entries.set(id, { value, path, bytes })
    let ids = this.byPath.get(path)
    if (ids === undefined) this.byPath.set(path, ids = new Set())
    ids.add(id)
    this.used += bytes
    for (const oldest of this.entries.keys()) {
      if (this.used <= this.maxBytes) break
      this.remove(oldest)
    }
  }

  /** Every version of `path` (it was changed or deleted on some daemon). */
  dropPath (path: string): void {
    for (const id of this.byPath.get(path) ?? []) this.remove(id)
  }

  private remove (id: string): void {
    const e = this.entries.get(id)
    if (e === undefined) return
    this.entries.delete(id)
    this.used -= e.bytes
    const ids = this.byPath.get(e.path)
    ids?.delete(id)
    if (ids?.size === 0) this.byPath.delete(e.path)
  }
}
