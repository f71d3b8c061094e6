// Sandboxes bound to one stored function version (isolation contract, rule 2):
// a sandbox that ran path@version serves later calls of that same path@version
// only, until it reaches its use count or sits idle too long.
import { HearthError } from '../errors.js'
import type { Sandbox } from '../sandbox/sandbox.js'
import type { WaitLimit } from './wait-limit.js'

export interface WarmSetOptions {
  readonly maxTotal: number
  readonly maxPerFunction: number
  readonly idleMs: number
  readonly maxUses: number
  /** QUEUE_MAX, shared with the language pools */
  readonly queue: WaitLimit
  /** ACQUIRE_TIMEOUT, for the message: each wait ends at its call's own deadline */
  readonly waitTimeoutMs: number
  /** a teardown that failed (idle expiry, eviction): off any call's path, reported */
  readonly onBackgroundError: (err: Error) => void
  /** a bound sandbox the set itself killed: idle too long, or evicted for another function */
  readonly onDestroy?: (sandbox: Sandbox, reason: 'idle' | 'evicted') => void
}

interface Waiter {
  readonly resolve: (s: Sandbox) => void
  readonly reject: (e: Error) => void
  readonly timer: NodeJS.Timeout
}

interface Group {
  readonly idle: Sandbox[] // most recently used last
  readonly waiters: Waiter[]
  members: number // idle + busy sandboxes bound to this function
}

export type Claim =
  | { readonly kind: 'sandbox', readonly sandbox: Sandbox } // an idle bound sandbox
  | { readonly kind: 'bind' } // take a fresh one and bind it here after the call
  | { readonly kind: 'unbound' } // take a fresh one, destroy it after the call

export class WarmSet {
  private readonly groups = new Map<string, Group>()
  private readonly idleTimers = new Map<Sandbox, NodeJS.Timeout>()
  private readonly opts: WarmSetOptions
  private total = 0
  private waiting = 0

  constructor (opts: WarmSetOptions) {
    this.opts = opts
  }

  /**
   * Where the next call of `key` runs: an idle bound sandbox; else a fresh one
   * that joins the group (while the function is under its share); else it waits
   * for one of the group's busy sandboxes.
   */
  async claim (key: string, deadline: number): Promise<Claim> {
    let group = this.groups.get(key)
    if (group !== undefined) {
      this.groups.delete(key) // most recently used last: eviction takes from the front
      this.groups.set(key, group)
      const sandbox = this.popIdle(key, group)
      if (sandbox !== undefined) return { kind: 'sandbox', sandbox }
      group = this.groups.get(key) // popIdle may have dropped a dead group
    }
    if (this.opts.maxPerFunction === 0 || this.opts.maxTotal === 0) return { kind: 'unbound' }
    if (group === undefined || group.members < this.opts.maxPerFunction) {
      if (this.total >= this.opts.maxTotal && !this.evictOne()) return { kind: 'unbound' }
      const g = group ?? this.newGroup(key)
      g.members++
      this.total++
      return { kind: 'bind' }
    }
    const done = this.opts.queue.enter()
    try {
      return { kind: 'sandbox', sandbox: await this.wait(group, deadline) }
    } finally {
      done()
    }
  }

  /** Returns a sandbox after a good call; false when it must be destroyed instead. */
  release (key: string, sandbox: Sandbox): boolean {
    const group = this.groups.get(key)
    if (group === undefined || sandbox.state !== 'idle' || sandbox.uses >= this.opts.maxUses) {
      this.leave(key)
      return false
    }
    const waiter = group.waiters.shift()
    if (waiter !== undefined) {
      clearTimeout(waiter.timer)
      this.waiting--
      waiter.resolve(sandbox)
      return true
    }
    group.idle.push(sandbox)
    const timer = setTimeout(() => {
      const i = group.idle.indexOf(sandbox)
      if (i === -1) return
      group.idle.splice(i, 1)
      this.idleTimers.delete(sandbox)
      this.leave(key)
      this.destroy(sandbox, 'idle')
    }, this.opts.idleMs)
    timer.unref()
    this.idleTimers.set(sandbox, timer)
    return true
  }

  /** A bound sandbox (or a 'bind' claim) that will not come back: frees its place. */
  leave (key: string): void {
    const group = this.groups.get(key)
    if (group === undefined) return
    group.members--
    this.total--
    if (group.members > 0) {
      // A place opened (use count reached, a crash): the first waiter takes it
      // with a fresh sandbox rather than queueing behind the members left.
      const waiter = group.waiters.shift()
      if (waiter !== undefined) {
        clearTimeout(waiter.timer)
        this.waiting--
        waiter.reject(new RetryClaim())
      }
      return
    }
    // Last member gone while calls wait: they may now take fresh sandboxes.
    for (const waiter of group.waiters.splice(0)) {
      clearTimeout(waiter.timer)
      this.waiting--
      waiter.reject(new RetryClaim())
    }
    this.groups.delete(key)
  }

  stats (): { functions: number, sandboxes: number, idle: number, waiting: number } {
    let idle = 0
    for (const g of this.groups.values()) idle += g.idle.length
    return { functions: this.groups.size, sandboxes: this.total, idle, waiting: this.waiting }
  }

  /** Every idle bound sandbox, removed from the set (for shutdown). */
  drainIdle (): Sandbox[] {
    const out: Sandbox[] = []
    for (const [key, group] of this.groups) {
      for (const sandbox of group.idle.splice(0)) {
        clearTimeout(this.idleTimers.get(sandbox))
        this.idleTimers.delete(sandbox)
        out.push(sandbox)
        this.leave(key)
      }
    }
    return out
  }

  private destroy (sandbox: Sandbox, reason: 'idle' | 'evicted'): void {
    this.opts.onDestroy?.(sandbox, reason)
    sandbox.destroy().catch((err: Error) => this.opts.onBackgroundError(err))
  }

  private newGroup (key: string): Group {
    const group: Group = { idle: [], waiters: [], members: 0 }
    this.groups.set(key, group)
    return group
  }

  private popIdle (key: string, group: Group): Sandbox | undefined {
    while (group.idle.length > 0) {
      const sandbox = group.idle.pop() as Sandbox
      clearTimeout(this.idleTimers.get(sandbox))
      this.idleTimers.delete(sandbox)
      if (sandbox.state === 'idle') return sandbox
      this.leave(key) // died while idle (killed from outside): drop it
    }
    return undefined
  }

  /** Destroys the least recently used idle sandbox of any function, to make room. */
  private evictOne (): boolean {
    for (const [key, group] of this.groups) {
      const sandbox = group.idle.shift()
      if (sandbox === undefined) continue
      clearTimeout(this.idleTimers.get(sandbox))
      this.idleTimers.delete(sandbox)
      this.leave(key)
      this.destroy(sandbox, 'evicted')
      return true
    }
    return false
  }

  private async wait (group: Group, deadline: number): Promise<Sandbox> {
    this.waiting++
    return await new Promise<Sandbox>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = group.waiters.findIndex((w) => w.timer === timer)
        if (i !== -1) group.waiters.splice(i, 1)
        this.waiting--
        reject(new HearthError('queue_timeout', `no sandbox of this function became free in time (ACQUIRE_TIMEOUT: ${this.opts.waitTimeoutMs} ms)`))
      }, Math.max(0, deadline - Date.now()))
      group.waiters.push({ resolve, reject, timer })
    })
  }
}

/** The group a call waited on emptied: claim again. */
export class RetryClaim extends Error {}
