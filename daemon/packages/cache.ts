// The layer cache's books: how big each layer is, when a call last used it,
// and which are in use (held by a call being prepared or run, or bound in a
// live sandbox). Past LAYER_CACHE_MAX, the least recently used layers that
// are not in use are removed; a stored version whose layer was removed gets
// it back from its lock on its next call (Packages.ensure).
import { readdir, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { bytesOf, removeTree } from './tree.js'

export interface CacheOptions {
  readonly dir: string
  readonly maxBytes: number
  /** host directories of layers bound in live sandboxes (the runner's) */
  readonly bound: () => ReadonlySet<string>
}

export class LayerCache {
  private readonly sizes = new Map<string, number>()
  private readonly lastUsed = new Map<string, number>()
  private readonly holds = new Map<string, number>()
  private evicting: Promise<string[]> = Promise.resolve([])

  constructor (private readonly o: CacheOptions) {}

  /** Learns the layers already on disk (a restart): their sizes, and their age from their mtime. */
  async load (): Promise<void> {
    let names: string[] = []
    try { names = await readdir(this.o.dir) } catch { return }
    for (const hash of names.filter((n) => /^[0-9a-f]{64}$/.test(n))) {
      this.sizes.set(hash, await bytesOf(join(this.o.dir, hash)).catch(() => 0))
      this.lastUsed.set(hash, (await stat(join(this.o.dir, hash))).mtimeMs)
    }
  }

  added (hash: string, bytes: number): void {
    this.sizes.set(hash, bytes)
    this.lastUsed.set(hash, Date.now())
  }

  /** Marks a layer in use until the returned function is called. */
  hold (hash: string): () => void {
    this.holds.set(hash, (this.holds.get(hash) ?? 0) + 1)
    this.lastUsed.set(hash, Date.now())
    let held = true
    return () => {
      if (!held) return
      held = false
      const n = (this.holds.get(hash) ?? 1) - 1
      if (n === 0) this.holds.delete(hash)
      else this.holds.set(hash, n)
      this.lastUsed.set(hash, Date.now())
    }
  }

  /** Resolves once no eviction is under way: a layer found present after it stays (when held). */
  async settled (): Promise<void> {
    await this.evicting.catch(() => {})
  }

  get totalBytes (): number {
    let n = 0
    for (const b of this.sizes.values()) n += b
    return n
  }

  /** Removes least recently used layers not in use until the cache fits (one eviction at a time). Returns those removed. */
  async evict (): Promise<string[]> {
    this.evicting = this.evicting.then(async () => await this.evictNow(), async () => await this.evictNow())
    return await this.evicting
  }

  private async evictNow (): Promise<string[]> {
    const bound = this.o.bound()
    const removed: string[] = []
    const candidates = [...this.sizes.keys()]
      .filter((h) => !this.holds.has(h) && !bound.has(join(this.o.dir, h)))
      .sort((a, b) => (this.lastUsed.get(a) ?? 0) - (this.lastUsed.get(b) ?? 0))
    for (const hash of candidates) {
      if (this.totalBytes <= this.o.maxBytes) break
      if (this.holds.has(hash) || this.o.bound().has(join(this.o.dir, hash))) continue // taken meanwhile
      // Out of the way first (a rename: calls that look for it from now on
      // rebuild it), then deleted.
      const gone = join(this.o.dir, `.evict-${hash}`)
      try {
        await rename(join(this.o.dir, hash), gone)
      } catch {
        continue
      }
      this.sizes.delete(hash)
      this.lastUsed.delete(hash)
      removed.push(hash)
      await removeTree(gone)
    }
    return removed
  }
}
