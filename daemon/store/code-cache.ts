// The code of stored function versions, cached by the daemon (versions never
// change, so an entry is only ever dropped to make room or because its path
// was changed or deleted). Bounded by bytes (../lru.ts): with 1,024 entries,
// dropped oldest-first, a daemon calling more functions than that in rotation
// fetched each call's code from Redis again (found with the bench's 2,000
// functions round-robin).
import { ByteLru, textBytes } from '../lru.js'

/** What an entry is charged beside its code's text. */
const ENTRY_OVERHEAD = 512

export class CodeCache<T extends { readonly code: string }> {
  private readonly lru: ByteLru<string, { value: T, path: string }>
  private readonly byPath = new Map<string, Set<string>>()

  constructor (maxBytes: number) {
    this.lru = new ByteLru(maxBytes, (id, e) => this.unindex(e.path, id))
  }

  get size (): number {
    return this.lru.size
  }

  get bytes (): number {
    return this.lru.bytes
  }

  get (id: string): T | undefined {
    return this.lru.get(id)?.value
  }

  /** Caches `value` as `id`, a version of `path`. */
  set (path: string, id: string, value: T): void {
    if (!this.lru.set(id, { value, path }, textBytes(value.code) + ENTRY_OVERHEAD)) {
      this.unindex(path, id) // larger than the whole cache: not kept, and an older copy is gone too
      return
    }
    let ids = this.byPath.get(path)
    if (ids === undefined) this.byPath.set(path, ids = new Set())
    ids.add(id)
  }

  /** Every version of `path` (it was changed or deleted on some daemon). */
  dropPath (path: string): void {
    for (const id of this.byPath.get(path) ?? []) this.lru.delete(id)
    this.byPath.delete(path)
  }

  private unindex (path: string, id: string): void {
    const ids = this.byPath.get(path)
    ids?.delete(id)
    if (ids?.size === 0) this.byPath.delete(path)
  }
}
