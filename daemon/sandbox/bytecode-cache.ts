// Python bytecode of run-now code, by its text: a fresh sandbox compiles the
// code it is sent (167 us for one line, its first call's largest cost after
// its copies of the zygote's pages), and load tests and latency-sensitive
// callers send the same code again and again. The first fresh sandbox to
// compile a text sends its code object's marshal bytes back before it runs it
// (runtimes/PROTOCOL.md, `compiled`); the next ones are sent those and load
// them (~2 us). Taken only from a sandbox no user code has run in yet
// (sandbox.ts), so the bytes are the bootstrap's, never the user's.
import { ByteLru, textBytes } from '../lru.js'

/** Bytes of bytecode and code text kept, all entries together. */
const CACHE_BYTES = 16 << 20

/** Weight of the latest fresh sandbox's first call in `compiles`. */
const COMPILE_WEIGHT = 1 / 8

export class BytecodeCache {
  /** The largest bytecode asked of a sandbox (and kept). */
  readonly entryMax = 1 << 20
  private readonly lru = new ByteLru<string, Buffer>(CACHE_BYTES)
  /** share of fresh sandboxes' first calls that compiled lately (moving average; none seen: 1) */
  private compiledShare = 1

  get (code: string): Buffer | undefined {
    return this.lru.get(code)
  }

  /**
   * A fresh sandbox's first call compiled its code (no bytecode was kept for
   * it), or not. The python zygote copies what a compile writes (~190 pages)
   * into every child it forks while most first calls compile, and into none
   * otherwise: a child copies them then at its first compile, in the call
   * (runtimes/zygote/probe.h, hz_prefault_compile).
   */
  firstCall (compiled: boolean): void {
    this.compiledShare += ((compiled ? 1 : 0) - this.compiledShare) * COMPILE_WEIGHT
  }

  /** Most fresh sandboxes' first calls compiled lately: the next ones are forked ready to. */
  get compiles (): boolean {
    return this.compiledShare >= 0.5
  }

  /** Keeps `bytecode` (copied: a decoded frame's bytes may be a view of a larger buffer) for `code`. */
  set (code: string, bytecode: Uint8Array): void {
    if (bytecode.length > this.entryMax) return
    this.lru.set(code, Buffer.from(bytecode), textBytes(code) + bytecode.length)
  }
}
