// Fresh sandboxes started by one runtime's zygote: forked into its interpreter
// (or, node ones from the python zygote, executed after the same isolation).
// Replaces the zygote after ZYGOTE_MAX_FORKS forks or ZYGOTE_MAX_AGE (siblings
// share its address space layout and hash seed: the budget bounds that),
// starting the successor ahead of time so no call waits for it; a retired
// zygote lives on, forking nothing, until its last child is gone (they live in
// its pid namespace).
import { randomBytes } from 'node:crypto'
import { GO } from '../protocol.js'
import type { ForkIntoCgroups, SandboxLimits } from '../sandbox/limits/index.js'
import type { ExitStatus, Launch, SandboxProcess } from '../sandbox/process.js'
import type { Connections, Rendezvous } from './rendezvous.js'
import { pagesOf, type ForkerStats } from './stats.js'
import { Zygote, type Fork } from './zygote.js'

export interface ForkerOptions {
  /** what its zygote runs, and so what its forked programs run */
  readonly runtime: ZygoteRuntime
  readonly argv: readonly string[]
  readonly seccompFile: string | null
  readonly libraryFile: string
  /** ZYGOTE_PRETOUCH: which children read the pages their first call will write before they are ready (runtimes/zygote/touch.c); default spares */
  readonly pretouch?: 'spares' | 'always' | 'off'
  readonly rendezvous: Rendezvous
  readonly maxForks: number
  readonly maxAgeMs: number
  readonly startTimeoutMs: number
  /** enabled: each zygote is adopted (v2: moved under the sandboxes' parent) and starts each sandbox in its cgroups (bound into it, argv.ts) */
  readonly cgroups?: Pick<ForkIntoCgroups, 'adopt'>
  readonly onStderr?: (line: string) => void
  /** the host directory bound into its zygotes for children's pipes, when the daemon cannot reach a zygote's own (rendezvous.ts) */
  readonly hostPipes?: string
  /** a zygote died without being asked to, or a successor failed to start */
  readonly onTrouble?: (err: Error) => void
  /** a zygote started after none could (setAside): sandboxes are forked again */
  readonly onBack?: () => void
}

export type ZygoteRuntime = 'python' | 'node'

/** Start earlier than the budget runs out, so the swap costs no call a wait. */
const SUCCESSOR_AT = 0.9
/** A zygote that failed to start is tried again after this long, then twice as long each time, up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 1000
const RETRY_MAX_MS = 60_000
const nextRetryMs = (ms: number): number => Math.min(2 * ms, RETRY_MAX_MS)
/** Start timeouts a fork held in the kernel is waited for, in all, before its zygote is killed (watchFork). */
const KERNEL_PATIENCE = 3

export class Forker {
  /** set when zygotes cannot work here; sandboxes of this runtime are spawned */
  unavailable: string | null = null
  /** why node sandboxes come from this (python) forker's zygote, executed, when they do */
  execReason: string | null = null
  private current: Zygote | null = null
  private next: Promise<Zygote> | null = null
  private readonly retiring = new Set<Zygote>()
  private readonly opts: ForkerOptions
  private started = 0
  private readonly forks: Record<ZygoteRuntime, number> = { python: 0, node: 0 }
  private readonly born: Record<ZygoteRuntime, number> = { python: 0, node: 0 }
  private readonly pretouched: Record<ZygoteRuntime, number> = { python: 0, node: 0 }
  /** set while no zygote could start (setAside): the next try */
  private retry: NodeJS.Timeout | null = null
  /** after an early successor failed to start, none is tried early again before `at` (then `ms` doubles, up to RETRY_MAX_MS) */
  private early = { at: 0, ms: RETRY_FIRST_MS }
  /** zygotes moved where they may fork into the sandboxes' cgroups */
  private readonly adopted = new WeakSet<Zygote>()
  private closed = false

  constructor (opts: ForkerOptions) {
    this.opts = opts
  }

  /** Starts the first zygote; rejects (ZygoteUnavailable, or why it did not start) when it cannot. */
  async start (): Promise<void> {
    await this.successor()
  }

  get usable (): boolean {
    return this.unavailable === null && !this.closed
  }

  /**
   * How a `runtime` sandbox with `limits` comes to life: forked, placed in its
   * cgroup, then let go. `precompile`: its first call will likely compile
   * (python): what a compile writes is copied before it is ready, not in that
   * call. `spare`: no call waits for it; per ZYGOTE_PRETOUCH, it reads the
   * pages its first call will write before it is ready.
   */
  launch (limits: SandboxLimits, runtime: ZygoteRuntime, o: { precompile?: boolean, spare?: boolean } = {}): Launch {
    return async (signal) => {
      const zygote = await this.zygote()
      signal.throwIfAborted() // the wait for a successor can outlast the start's own timeout
      const nonce = randomBytes(16).toString('hex')
      const arrived = this.opts.rendezvous.expect(nonce, this.opts.hostPipes ?? zygote.pipes)
      arrived.catch(() => {}) // awaited below, or given up on
      // A child waiting for its go byte (isolate.c, become_sandbox) ends when
      // its connections close; the init of an executed program waits while
      // the zygote waits for it, so no kill could reach it before.
      const giveUp = (reason: Error): void => {
        this.opts.rendezvous.cancel(nonce, reason)
        // Connections that arrived, whether taken below or not (the fork's
        // end can win the race as they arrive): closed.
        arrived.then((conns) => { for (const socket of Object.values(conns)) socket.destroy() }, () => {})
        zygote.killChild(nonce)
      }
      const onAbort = (): void => giveUp(new Error('aborted'))
      signal.addEventListener('abort', onAbort, { once: true })
      try {
        const touch = this.opts.pretouch === 'always' || (this.opts.pretouch !== 'off' && o.spare === true)
        const asked = zygote.fork(nonce, runtime, { rlimits: limits.rlimits, cgroup: this.adopted.has(zygote) ? limits.cgroup : undefined, precompile: o.precompile, touch })
        const watching = this.watchFork(zygote)
        let fork: Fork
        try {
          fork = await asked
        } finally {
          watching.stop()
        }
        this.forks[runtime]++
        if (fork.hostPid === null) this.born[runtime]++
        if (touch) this.pretouched[runtime]++
        const conns = await Promise.race([arrived, fork.exited.then(gone)])
        // Into its cgroup before it may go on, unless born there: no user
        // code, no child of it, runs outside the sandbox's limits.
        if (fork.hostPid !== null) await limits.place?.(fork.hostPid)
        if (signal.aborted) throw new Error('aborted')
        conns.proto.write(GO)
        return forkedProcess(conns, fork, () => this.killIn(zygote, nonce, fork.exited))
      } catch (err) {
        giveUp(err as Error)
        throw err
      } finally {
        signal.removeEventListener('abort', onAbort)
      }
    }
  }

  stats (runtime: ZygoteRuntime): ForkerStats {
    return {
      mode: this.usable ? 'zygote' : 'spawn',
      ...(this.unavailable === null ? {} : { reason: this.unavailable }),
      start: runtime === this.opts.runtime ? 'fork' : 'exec',
      ...(runtime !== this.opts.runtime && this.execReason !== null ? { startReason: this.execReason } : {}),
      zygotes: (this.current?.alive === true ? 1 : 0) + this.retiring.size,
      retiring: this.retiring.size,
      started: this.started,
      forks: this.forks[runtime],
      currentForks: this.current?.forks ?? 0,
      ...(runtime === this.opts.runtime && this.current !== null ? pagesOf(this.current) : {}),
      ...(this.opts.cgroups === undefined ? {} : { bornInCgroup: this.born[runtime] }),
      pretouchedForks: this.pretouched[runtime]
    }
  }

  /**
   * No zygote to fork from (`err`: why the last one did not start): this
   * runtime's sandboxes are spawned (usable is false) while a zygote is tried
   * again in the background, 1 s later, then twice as long each time up to a
   * minute; once one starts, they are forked again. A failure that may pass
   * (a start that timed out under load, a crashed zygote whose successor
   * failed) then costs no call, and one that does not costs a zygote start
   * a minute. `warn`: say so (onTrouble).
   */
  setAside (err: Error, warn = true): void {
    if (this.closed || this.retry !== null) return
    this.unavailable = `no zygote could start (${err.message}): fresh sandboxes are spawned while one is tried again`
    if (warn) this.opts.onTrouble?.(new Error(this.unavailable))
    this.tryAgain(RETRY_FIRST_MS)
  }

  private tryAgain (delayMs: number): void {
    this.retry = setTimeout(() => {
      this.successor().then(() => {
        this.retry = null
        this.unavailable = null
        this.opts.onBack?.()
      }, () => {
        if (!this.closed) this.tryAgain(nextRetryMs(delayMs))
      })
    }, delayMs)
    this.retry.unref()
  }

  /**
   * Watches a fork asked of `z` until stop(). Unanswered after the start
   * timeout, a stopped zygote (SIGSTOP, a debugger: it forks and answers in
   * well under a millisecond) is killed, its sandboxes with it (their exits
   * could not be told either), so that the next start makes a successor; left
   * alone, it took every start after it, each waiting out the timeout. One
   * running or waiting in the kernel is given up to KERNEL_PATIENCE start
   * timeouts in all, said once: its fork waits on the kernel, which under
   * other sandboxes' fork bombs can take seconds (seen: 10 s, a fork queued
   * on the cgroup lock that cgroup v1 joins take), and killing it then killed
   * every sandbox it had forked, calls in flight among them. (A sandbox's end
   * not told: killIn.)
   */
  private watchFork (z: Zygote): { stop: () => void } {
    const ms = this.opts.startTimeoutMs
    let waited = 0
    const check = (): void => {
      if (this.closed || (this.current !== z && !this.retiring.has(z))) return // a retiring one too: else a fork stuck in it left it retiring for good
      waited++
      if (!z.stopped && waited < KERNEL_PATIENCE) {
        if (waited === 1) this.opts.onTrouble?.(new Error(`a zygote has not answered a fork in ${ms} ms and is not stopped: the kernel holds the fork (other sandboxes' fork bombs, a frozen cgroup); waiting up to ${KERNEL_PATIENCE * ms} ms in all`))
        timer = setTimeout(check, ms)
        return
      }
      this.killStuck(z, `a zygote did not answer a fork in ${waited * ms} ms: killed with its sandboxes, a successor starts`)
    }
    let timer = setTimeout(check, ms)
    return { stop: () => clearTimeout(timer) }
  }

  /** Kills `z`, no longer current nor retiring (its exit then is no surprise: onExit), saying `why`. */
  private killStuck (z: Zygote, why: string): void {
    if (this.current === z) this.current = null
    this.retiring.delete(z)
    this.opts.onTrouble?.(new Error(why))
    z.kill()
  }

  /**
   * Asks `z` to kill a child of its. An end not told within the start timeout
   * is the child's (in uninterruptible sleep, the kill lands when it wakes) or
   * the zygote's (stopped, stuck): a ping tells which. A zygote that does not
   * answer within another start timeout is killed with its children: nothing
   * else would end them (nor a retiring zygote, which ends after its last
   * child). One that answers is asked again a start timeout later, and the
   * held sandbox said once.
   */
  private killIn (z: Zygote, nonce: string, exited: Promise<unknown>): void {
    z.killChild(nonce)
    const ms = this.opts.startTimeoutMs
    let ended = false
    let said = false
    let timer: NodeJS.Timeout
    const watch = (): void => {
      timer = setTimeout(() => {
        void z.ping(ms).then((answered) => {
          if (ended || this.closed || !z.alive) return
          if (answered) {
            if (!said) this.opts.onTrouble?.(new Error(`a sandbox has not ended ${ms} ms after it was killed, and its zygote answers: the kernel holds the child (uninterruptible sleep, a frozen cgroup); it ends when it can`))
            said = true
            watch()
          } else if (this.current === z || this.retiring.has(z)) this.killStuck(z, `${this.current === z ? 'the current' : 'a retiring'} zygote did not end a sandbox in ${ms} ms nor answer a ping in ${ms} ms: killed with its sandboxes`)
        })
      }, ms)
      timer.unref()
    }
    watch()
    void exited.then(() => { ended = true; clearTimeout(timer) })
  }

  /** Kills every zygote, and with them every sandbox forked from them. */
  async close (): Promise<void> {
    this.closed = true
    if (this.retry !== null) clearTimeout(this.retry)
    const all = [this.current, ...this.retiring].filter((z): z is Zygote => z !== null)
    const next = await this.next?.catch(() => null)
    if (next !== null && next !== undefined) all.push(next)
    for (const z of all) z.kill()
    await Promise.all(all.map(async (z) => await z.exited))
  }

  /** The zygote to fork from now, replacing a worn or dead one. */
  private async zygote (): Promise<Zygote> {
    if (this.closed) throw new Error('the zygote forker is closed')
    const z = this.current
    if (z !== null && z.alive) {
      const used = Math.max(z.forks / this.opts.maxForks, (Date.now() - z.started) / this.opts.maxAgeMs)
      if (used < 1) {
        if (used >= SUCCESSOR_AT && this.next === null && Date.now() >= this.early.at) this.earlySuccessor()
        return z
      }
    }
    try {
      return await this.successor()
    } catch (err) {
      this.setAside(err as Error)
      throw err
    }
  }

  /**
   * A successor started before the current zygote is worn out. One that fails
   * (warned) is not tried early again for a while, 1 s then twice as long
   * each time: without that, every start between SUCCESSOR_AT and the budget
   * tried one (up to a tenth of ZYGOTE_MAX_FORKS failed starts and warnings).
   */
  private earlySuccessor (): void {
    this.successor().then(() => { this.early = { at: 0, ms: RETRY_FIRST_MS } }, (err: Error) => {
      this.early = { at: Date.now() + this.early.ms, ms: nextRetryMs(this.early.ms) }
      this.opts.onTrouble?.(err)
    })
  }

  private async successor (): Promise<Zygote> {
    this.next ??= Zygote.start({
      argv: this.opts.argv,
      seccompFile: this.opts.seccompFile,
      libraryFile: this.opts.libraryFile,
      startTimeoutMs: this.opts.startTimeoutMs,
      onStderr: this.opts.onStderr
    }).then(async (z) => await this.adopt(z)).then((z) => {
      this.next = null
      this.started++
      void z.exited.then(() => this.onExit(z))
      // every child's end, a fork that failed or never connected included: a retiring zygote closes after its last
      z.onChildGone = () => this.closeIfDone(z)
      if (this.closed) {
        z.kill()
        throw new Error('the zygote forker is closed')
      }
      const old = this.current
      this.current = z
      if (old !== null) this.retire(old)
      return z
    }, (err: Error) => {
      this.next = null
      throw err
    })
    return await this.next
  }

  /** A zygote that holds the sandboxes' cgroups moves under them; where it cannot, the daemon places its children. */
  private async adopt (z: Zygote): Promise<Zygote> {
    if (this.opts.cgroups === undefined || !z.holdsCgroups) return z
    try {
      await this.opts.cgroups.adopt(z.pid)
      this.adopted.add(z)
    } catch (err) {
      this.opts.onTrouble?.(new Error(`cannot move the zygote into the sandboxes' cgroup (${(err as Error).message}): the daemon places each sandbox instead`))
    }
    return z
  }

  private retire (z: Zygote): void {
    if (!z.alive) return
    this.retiring.add(z)
    this.closeIfDone(z)
  }

  private closeIfDone (z: Zygote): void {
    if (this.retiring.has(z) && z.live === 0) {
      this.retiring.delete(z)
      z.close()
    }
  }

  private onExit (z: Zygote): void {
    const expected = this.closed || (!this.retiring.has(z) && this.current !== z)
    this.retiring.delete(z)
    if (this.current === z) this.current = null
    if (!expected) this.opts.onTrouble?.(new Error(`a zygote died (${z.exitStatus}); its sandboxes with it`))
  }
}

async function gone (status: ExitStatus): Promise<never> {
  const how = status.error?.message ?? (status.signal !== null ? `signal ${status.signal}` : `exit code ${status.code}`)
  throw new Error(`the forked sandbox exited before it connected (${how})`)
}

function forkedProcess (conns: Connections, fork: Fork, kill: () => void): SandboxProcess {
  let alive = true
  const exited = fork.exited.then((status) => { alive = false; return status })
  return {
    chan: conns.proto,
    stdout: conns.stdout,
    stderr: conns.stderr,
    exited,
    get alive () { return alive },
    kill: () => { if (alive) kill() }
  }
}
