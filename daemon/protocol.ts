// The wire format between the daemon and the bootstraps (runtimes/PROTOCOL.md):
// 4-byte big-endian length + one msgpack map. The only module that knows it.
import { Packr, RESERVE_START_SPACE } from 'msgpackr'

// Records are a msgpackr extension Python's msgpack cannot read.
const packr = new Packr({ useRecords: false })

export const DEFAULT_MAX_FRAME = 64 << 20

/**
 * The largest frame a sandbox's bootstrap sends under these caps (it cuts
 * what is over them first): a log line, a result, or an error's four texts,
 * at most the larger cap in bytes each, and the map around them. A frame over
 * it is user code writing to fd 3: a protocol error, found from the frame's
 * length before the daemon holds any of its bytes.
 */
export function sandboxFrameCap (resultMax: number, logMax: number): number {
  return 4 * (Math.max(resultMax, logMax) + 4) + 4096
}

/**
 * `resultMax`, `logMax`: the call's byte caps, which the bootstrap applies before its frames (the daemon enforces them).
 * Python only: `compiled`, the code's bytecode from the daemon's cache; `wantCompiled`, asked of a fresh sandbox: send it (a `compiled` frame, its bytes up to this many).
 */
export interface RunMessage { t: 'run', id: number, key: string, code?: string, input: string, filename: string, resultMax?: number, logMax?: number, compiled?: Buffer, wantCompiled?: number }
export interface ReadyMessage { t: 'ready', runtime: string, pid: number }
export interface LogMessage { t: 'log', id: number, stream: 'stdout' | 'stderr', data: string }
/** `tooLarge`: the result's size in bytes, sent instead of a result over the call's resultMax */
export interface ResultMessage { t: 'result', id: number, json?: string, stdout?: string, tooLarge?: number }
/** `syntax`: the code itself does not compile (a Python SyntaxError), at the user's line and column */
export interface SyntaxPosition { line: number, column: number, lineText: string }
export interface ErrorMessage { t: 'error', id: number, name: string, message: string, stack: string, syntax?: SyntaxPosition }
/** The bytecode a run frame's `wantCompiled` asked for; no `data` when over the bytes asked */
export interface CompiledMessage { t: 'compiled', id: number, data?: Uint8Array }
export type InboundMessage = ReadyMessage | LogMessage | ResultMessage | ErrorMessage | CompiledMessage

// A zygote's control channel (runtimes/PROTOCOL.md, "Zygote").
export interface Rlimits { data?: number, nproc?: number, core?: number }
/** runtime: what the program runs. The zygote's own runtime (python when absent) forks a copy of it; node, asked of the python zygote, executes node after the same isolation */
/** cgroup: the sandbox cgroup (a directory of the zygote's /run/hearth-cgroup, cgroup v2) its init is born in (clone3) */
/** `precompile`: the child copies what a compile writes before it is ready; `touch`: it reads the pages its first call will write (a spare: no call waits for it) */
export interface ForkCommand { t: 'fork', nonce: string, runtime?: 'node', rlimits?: Rlimits, cgroup?: string, precompile?: 1, touch?: 1 }
export interface KillCommand { t: 'kill', nonce: string }
/** Answered with a `pong` of the same id: the zygote still reads its channel (a sandbox's end that is not told may be the child's, not the zygote's) */
export interface PingCommand { t: 'ping', id: number }
export type ZygoteCommand = ForkCommand | KillCommand | PingCommand
/** `prefault`: pages each python child copies at once, as learned by the zygote's probe (0: every writable page); `premap`: read-only pages (code) it maps at once, as learned; `precompile`: pages it copies or maps at once before its first compile of user code, as learned; `cgroups`: it holds /run/hearth-cgroup; `hugeText`: 2 MB pages its runtime's code was moved onto (`hugeTextReason`: why none); `pinned`: of the prefault's pages, those fork copies itself (`pinReason`: why none) */
export interface ZygoteReady { t: 'ready', runtime: string, pid: number, prefault?: number, premap?: number, precompile?: number, cgroups?: boolean, hugeText?: number, hugeTextReason?: string, pinned?: number, pinReason?: string }
export interface ZygoteUnavailable { t: 'unavailable', message: string }
/** `pid`: init's, in the zygote's namespace; `placed`: born in its cgroup; else `program`: the daemon places init's only child (a forked program), not init. */
export interface Forked { t: 'forked', nonce: string, pid: number, program?: boolean, placed?: boolean }
export interface ForkFailed { t: 'failed', nonce: string, message: string }
export interface ChildExited { t: 'exited', nonce: string, code: number | null, signal: number | null }
export interface Pong { t: 'pong', id: number }
export type ZygoteMessage = ZygoteReady | ZygoteUnavailable | Forked | ForkFailed | ChildExited | Pong

/** The first line a forked child writes on its connection to the rendezvous socket (its stdout and stderr are named pipes beside it). */
export const HELLO = /^HEARTH ([0-9a-f]{32}) proto$/
export const HELLO_MAX = 64
/** The byte that lets a forked child go on, once it is in its cgroup. */
export const GO = Buffer.from('g')

export class ProtocolError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ProtocolError'
  }
}

/**
 * A frame, packed after 4 bytes msgpackr leaves free for the length: no copy
 * of the body (a 1 MB input's copy took 0.8 ms). msgpackr packs each message
 * past the last one's end, so the frame stays valid while it is written.
 */
export function encodeFrame (msg: RunMessage | ZygoteCommand): Buffer {
  const frame = packr.pack(msg, RESERVE_START_SPACE | 4)
  frame.writeUInt32BE(frame.length - 4, 0)
  return frame
}

const isString = (v: unknown): v is string => typeof v === 'string'
const isId = (v: unknown): v is number => Number.isSafeInteger(v)
const isIntOrNull = (v: unknown): v is number | null => v === null || Number.isSafeInteger(v)
const isBoolOrAbsent = (v: unknown): boolean => v === undefined || typeof v === 'boolean'

/** Checks the shape of a decoded frame; anything else is a protocol error. */
export function validateInbound (msg: unknown): InboundMessage {
  if (msg === null || typeof msg !== 'object') throw new ProtocolError('frame is not a map')
  const m = msg as Record<string, unknown>
  switch (m.t) {
    case 'ready':
      if (isString(m.runtime)) return m as unknown as ReadyMessage
      break
    case 'log':
      if (isId(m.id) && (m.stream === 'stdout' || m.stream === 'stderr') && isString(m.data)) return m as unknown as LogMessage
      break
    case 'result':
      if (isId(m.id) && (isString(m.json) || isString(m.stdout) || isId(m.tooLarge))) return m as unknown as ResultMessage
      break
    case 'compiled':
      if (isId(m.id) && (m.data === undefined || m.data instanceof Uint8Array)) return m as unknown as CompiledMessage
      break
    case 'error':
      if (isId(m.id) && isString(m.name) && isString(m.message)) {
        const e: ErrorMessage = { t: 'error', id: m.id, name: m.name, message: m.message, stack: isString(m.stack) ? m.stack : '' }
        const s = m.syntax as Record<string, unknown> | null | undefined
        if (s !== null && typeof s === 'object' && typeof s.line === 'number' && typeof s.column === 'number') {
          e.syntax = { line: s.line, column: s.column, lineText: isString(s.lineText) ? s.lineText : '' }
        }
        return e
      }
      break
  }
  throw new ProtocolError(`malformed frame of type ${JSON.stringify(m.t)}`)
}

/** Checks the shape of a frame from a zygote's control channel. */
export function validateZygote (msg: unknown): ZygoteMessage {
  if (msg === null || typeof msg !== 'object') throw new ProtocolError('frame is not a map')
  const m = msg as Record<string, unknown>
  switch (m.t) {
    case 'ready':
      if (isString(m.runtime) && isId(m.pid)) return m as unknown as ZygoteReady
      break
    case 'unavailable':
      if (isString(m.message)) return m as unknown as ZygoteUnavailable
      break
    case 'forked':
      if (isString(m.nonce) && isId(m.pid) && isBoolOrAbsent(m.program) && isBoolOrAbsent(m.placed)) return m as unknown as Forked
      break
    case 'failed':
      if (isString(m.nonce) && isString(m.message)) return m as unknown as ForkFailed
      break
    case 'exited':
      if (isString(m.nonce) && isIntOrNull(m.code) && isIntOrNull(m.signal)) return m as unknown as ChildExited
      break
    case 'pong':
      if (isId(m.id)) return m as unknown as Pong
      break
  }
  throw new ProtocolError(`malformed zygote frame of type ${JSON.stringify(m.t)}`)
}

/** Reassembles frames from arbitrarily split or coalesced chunks. */
export class FrameDecoder<M = InboundMessage> {
  private chunks: Buffer[] = []
  private buffered = 0
  private readonly maxFrame: number
  private readonly validate: (msg: unknown) => M

  constructor (maxFrame = DEFAULT_MAX_FRAME, validate: (msg: unknown) => M = validateInbound as (msg: unknown) => M) {
    this.maxFrame = maxFrame
    this.validate = validate
  }

  /** Returns every complete message; throws ProtocolError on a bad frame. */
  push (chunk: Buffer): M[] {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    const out: M[] = []
    while (this.buffered >= 4) {
      const head = this.peek(4)
      const size = head.readUInt32BE(0)
      if (size > this.maxFrame) throw new ProtocolError(`frame of ${size} bytes exceeds the ${this.maxFrame}-byte cap`)
      if (this.buffered < 4 + size) break
      const frame = this.take(4 + size)
      let decoded: unknown
      try {
        decoded = packr.unpack(frame.subarray(4))
      } catch (err) {
        throw new ProtocolError(`undecodable frame: ${(err as Error).message}`)
      }
      out.push(this.validate(decoded))
    }
    return out
  }

  private peek (n: number): Buffer {
    if ((this.chunks[0]?.length ?? 0) < n) this.chunks = [Buffer.concat(this.chunks)]
    return this.chunks[0] as Buffer
  }

  private take (n: number): Buffer {
    const all = this.peek(n)
    const frame = all.subarray(0, n)
    const rest = all.subarray(n)
    this.chunks = rest.length > 0 ? [rest, ...this.chunks.slice(1)] : this.chunks.slice(1)
    this.buffered -= n
    return frame
  }
}
