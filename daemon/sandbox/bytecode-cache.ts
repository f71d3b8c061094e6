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

export class BytecodeCache {
  /** The largest bytecode asked of a sandbox (and kept). */
  readonly entryMax = 1 << 20
  private readonly lru = new ByteLru<string, Buffer>(CACHE_BYTES)

  get (code: string): Buffer | undefined {
    return this.lru.get(code)
  }

  /** Keeps `bytecode` (copied: a decoded frame's bytes may be a view of a larger buffer) for `code`. */
  set (code: string, bytecode: Uint8Array): void {
    if (bytecode.length > this.entryMax) return
    this.lru.set(code, Buffer.from(bytecode), textBytes(code) + bytecode.length)
  }
}
