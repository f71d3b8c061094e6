// Per-function packages: an upload's npm or pip dependencies installed once, in a
// build sandbox, into a content-addressed layer that the function's sandboxes
// mount read-only (daemon/pool/runner.ts).
import { createHash } from 'node:crypto'
import { chmod, chown, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { HearthError } from '../errors.js'
import { checkReadable } from '../runtime-files.js'
import type { Limits, LimitsBackend } from '../sandbox/limits/index.js'
import { LayerCache } from './cache.js'
import { LayerStore } from './layers.js'
import type { Resolved } from './installer.js'
import { npmInstall } from './npm.js'
import { pipInstall } from './pip.js'
import { isPython, type Requested } from './spec.js'

export { parseDependencies, type Requested } from './spec.js'
export type { Resolved } from './installer.js'

/** What a stored version records of its packages (in its meta; the lock beside it). */
export interface VersionDependencies {
  readonly requested: Requested
  readonly resolved: Readonly<Record<string, string>>
  readonly layer: string
}

/** A layer a call may use until it calls release (eviction leaves it alone meanwhile). */
export interface Lease {
  readonly dir: string
  readonly release: () => void
}

export interface PackagesOptions {
  readonly stateDir: string
  /** the daemon's limits backend, which makes a build sandbox's cgroup too */
  readonly limits: LimitsBackend
  /** a build sandbox's own limits (BUILD_MAX_MEMORY, …) */
  readonly buildLimits: Limits
  readonly hostUid: number | null
  readonly timeoutMs: number
  /** BUILD_ALLOW_SOURCE: pip may build source distributions */
  readonly allowSource: boolean
  readonly maxBytes: number
  /** LAYER_CACHE_MAX: all layers together, past which unused ones are evicted */
  readonly cacheMaxBytes: number
  /** layer directories bound in live sandboxes (Runner.layersInUse) */
  readonly bound: () => ReadonlySet<string>
}

/** run-now dependency sets remembered, by the hash of what was asked */
const RESOLVED_MAX = 256

export class Packages {
  readonly layers: LayerStore
  private seq = 0
  private readonly resolvedSpecs = new Map<string, Resolved>()

  readonly cache: LayerCache

  constructor (private readonly o: PackagesOptions) {
    const dir = join(o.stateDir, 'layers')
    this.cache = new LayerCache({ dir, maxBytes: o.cacheMaxBytes, bound: o.bound })
    this.layers = new LayerStore({ dir, builderUid: o.hostUid, maxBytes: o.maxBytes, onAdded: (hash, bytes) => this.cache.added(hash, bytes) })
  }

  /** why packages cannot work here (STATE_DIR out of the sandbox uid's reach), or null */
  unavailable: string | null = null

  /** Cleans up after a crash; checks that the sandbox uid can reach the layers (bwrap binds them by path). Returns why not, or null. */
  async start (): Promise<string | null> {
    await mkdir(this.layers.dir, { recursive: true })
    await chmod(this.layers.dir, 0o755) // whatever the umask (the unit's is 0077): the sandbox uid reads layers through it
    await this.layers.removeLeftovers()
    await this.cache.load()
    try {
      checkReadable([this.layers.dir], this.o.hostUid)
    } catch {
      this.unavailable = `functions with dependencies cannot be installed or run: SANDBOX_UID ${String(this.o.hostUid)} cannot reach ${this.layers.dir} ` +
        '(bwrap binds layers by path): let others traverse every directory above it (chmod o+x), or choose another STATE_DIR'
    }
    return this.unavailable
  }

  /** An upload's dependencies: resolved and installed (or found, when another upload had the same set). */
  async install (deps: Requested, onOutput?: (line: string) => void): Promise<Resolved> {
    if (this.unavailable !== null) throw new HearthError('dependency_error', this.unavailable)
    const key = 'spec:' + createHash('sha256').update(JSON.stringify(deps)).digest('hex')
    const known = this.resolvedSpecs.get(key)
    if (known !== undefined && this.layers.has(known.hash)) return known
    const built = await this.layers.build(key, async (dir) => await this.installer(dir, deps, undefined, onOutput))
    await this.evict(built.hash)
    this.resolvedSpecs.delete(key)
    this.resolvedSpecs.set(key, built)
    if (this.resolvedSpecs.size > RESOLVED_MAX) this.resolvedSpecs.delete(this.resolvedSpecs.keys().next().value as string)
    return built
  }

  /**
   * The layer of a run-now call's dependencies: the set they resolved to the
   * first time this daemon saw them (ranges are not resolved again while it
   * runs: the same answer, no registry round trip per call), else installed now.
   */
  async forRunNow (deps: Requested): Promise<Lease> {
    for (;;) {
      const { hash } = await this.install(deps)
      const lease = await this.lease(hash)
      if (lease !== null) return lease
    }
  }

  /** A hold on a layer that is present (after any eviction under way), or null. */
  private async lease (hash: string): Promise<Lease | null> {
    const release = this.cache.hold(hash)
    await this.cache.settled()
    if (this.layers.has(hash)) return { dir: this.layers.path(hash), release }
    release()
    return null
  }

  /** Past LAYER_CACHE_MAX: the least recently used layers in use by nothing go, never the one just built. */
  private async evict (keep: string): Promise<void> {
    const release = this.cache.hold(keep)
    try {
      await this.cache.evict()
    } finally {
      release()
    }
  }

  /**
   * The layer directory of a stored version: present, or rebuilt from its
   * recorded lock (a daemon that did not build it, a cache that lost it) with
   * exactly the same versions. Calls that need it meanwhile wait for the one build.
   */
  async ensure (d: VersionDependencies, lockOf: () => Promise<string>): Promise<Lease> {
    if (this.unavailable !== null) throw new HearthError('dependency_error', this.unavailable)
    for (;;) {
      const lease = await this.lease(d.layer)
      if (lease !== null) return lease
      const rebuilt = await this.layers.build(d.layer, async (dir) => await this.installer(dir, d.requested, await lockOf()))
      // The address includes the runtime (Node's ABI, Python's cache tag): a daemon on another one cannot serve this version's layer.
      if (rebuilt.hash !== d.layer) throw new HearthError('dependency_error', `this version's packages were installed for another runtime than this daemon's (layer ${d.layer}, here ${rebuilt.hash}): daemons sharing a Redis need the same Python and Node versions`)
      await this.evict(d.layer)
    }
  }

  private async installer (dir: string, deps: Requested, lock?: string, onOutput?: (line: string) => void): Promise<Resolved> {
    const limits = await this.o.limits.create(`build-${process.pid}-${++this.seq}`, this.o.buildLimits)
    try {
      const python = isPython(deps)
      const build = { buildDir: dir, cacheDir: await this.cacheDir(python ? 'pip' : 'npm'), limits, hostUid: this.o.hostUid, timeoutMs: this.o.timeoutMs, onOutput }
      return python ? await pipInstall(build, { allowSource: this.o.allowSource }, deps, lock) : await npmInstall(build, deps, lock)
    } finally {
      await limits.destroy()
    }
  }

  private async cacheDir (tool: 'npm' | 'pip'): Promise<string> {
    const dir = join(this.o.stateDir, `${tool}-cache`)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    if (this.o.hostUid !== null) await chown(dir, this.o.hostUid, this.o.hostUid)
    return dir
  }
}
