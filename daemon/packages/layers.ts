// Built dependency layers under STATE_DIR/layers/<hash>, content-addressed
// (hash of runtime and exact set: every function with the same set shares
// one), each built at most once at a time (concurrent uploads and first calls
// wait for the same build), moved into place whole (rename) and made
// read-only: a layer is complete or absent, never half-built.
import { randomBytes } from 'node:crypto'
import { chown, mkdir, readdir, rename } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { HearthError } from '../errors.js'
import type { Resolved } from './installer.js'
import { bytesOf, removeTree, run } from './tree.js'

export interface LayerStoreOptions {
  readonly dir: string
  /** the host uid the build sandbox runs as (it writes the layer); null when the daemon is not root */
  readonly builderUid: number | null
  readonly maxBytes: number
  /** told of each layer moved into place, with its size */
  readonly onAdded?: (hash: string, bytes: number) => void
}

export class LayerStore {
  private readonly building = new Map<string, Promise<Resolved>>()

  readonly dir: string

  constructor (private readonly o: LayerStoreOptions) {
    this.dir = o.dir
  }

  /** The layer's directory (its node_modules inside). */
  path (hash: string): string {
    return join(this.o.dir, hash)
  }

  has (hash: string): boolean {
    return /^[0-9a-f]{64}$/.test(hash) && existsSync(join(this.path(hash), '.complete'))
  }

  /**
   * Runs `build` in a fresh directory, once per `key` at a time, and moves its
   * output into place as the layer of the hash it reports. A build that fails
   * or grows past the size cap leaves nothing behind.
   */
  async build (key: string, build: (dir: string) => Promise<Resolved>): Promise<Resolved> {
    let pending = this.building.get(key)
    if (pending === undefined) {
      pending = this.buildOnce(build).finally(() => this.building.delete(key))
      this.building.set(key, pending)
    }
    return await pending
  }

  private async buildOnce (build: (dir: string) => Promise<Resolved>): Promise<Resolved> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o755 })
    const work = join(this.o.dir, `.build-${randomBytes(6).toString('hex')}`)
    await mkdir(work, { mode: 0o755 })
    if (this.o.builderUid !== null) await chown(work, this.o.builderUid, this.o.builderUid)
    try {
      const resolved = await build(work)
      const bytes = await bytesOf(work)
      if (bytes > this.o.maxBytes) throw new HearthError('dependency_error', `the layer is ${bytes} bytes, more than LAYER_MAX_SIZE (${this.o.maxBytes})`)
      if (!this.has(resolved.hash)) {
        await mkdir(join(work, '.complete'))
        await run(['chmod', '-R', 'a-w,a+rX', work])
        await rename(work, this.path(resolved.hash)) // atomic: the layer, marked complete, or nothing
        this.o.onAdded?.(resolved.hash, bytes)
      }
      return resolved
    } finally {
      await removeTree(work) // a failed build, or a set already installed (after a rename, nothing is there)
    }
  }

  /** Removes what builds and evictions cut short by a crash left (.build-*, .evict-*). */
  async removeLeftovers (): Promise<void> {
    let names: string[] = []
    try { names = await readdir(this.o.dir) } catch { return }
    for (const name of names.filter((n) => n.startsWith('.build-') || n.startsWith('.evict-'))) {
      await removeTree(join(this.o.dir, name))
    }
  }
}
