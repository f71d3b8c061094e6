// The unix socket forked children connect to: three connections each
// (frames, raw stdout, raw stderr), each opened with a hello line naming the
// fork's nonce. A connection whose nonce nobody expects is closed.
import { chmodSync, chownSync, mkdirSync, rmSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { HELLO, HELLO_MAX } from '../protocol.js'

export type StreamKind = 'proto' | 'stdout' | 'stderr'
export type Connections = Record<StreamKind, Socket>

interface Expected {
  readonly conns: Partial<Connections>
  readonly resolve: (c: Connections) => void
  readonly reject: (e: Error) => void
}

const HELLO_TIMEOUT_MS = 5000

export class Rendezvous {
  /** host directory bound into zygotes; holds only the socket */
  readonly dir: string
  readonly path: string
  private readonly server: Server
  private readonly expected = new Map<string, Expected>()
  /** every connection not yet closed, handed over or not: close() ends them all */
  private readonly open = new Set<Socket>()

  private constructor (dir: string, server: Server) {
    this.dir = dir
    this.path = join(dir, 'sock')
    this.server = server
  }

  /**
   * Listens in `dir` (made here, mode 0755). `ownerUid`: the host uid the
   * zygotes run as, when the daemon is root; the socket is theirs alone.
   */
  static async open (dir: string, ownerUid: number | null): Promise<Rendezvous> {
    mkdirSync(dir, { recursive: true, mode: 0o755 })
    chmodSync(dir, 0o755)
    rmSync(join(dir, 'sock'), { force: true })
    const server = createServer()
    const rendezvous = new Rendezvous(dir, server)
    server.on('connection', (socket) => rendezvous.accept(socket))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(rendezvous.path, () => resolve())
    })
    server.on('error', () => {})
    if (ownerUid !== null) chownSync(rendezvous.path, ownerUid, ownerUid)
    chmodSync(rendezvous.path, 0o600)
    return rendezvous
  }

  /** Resolves with the three connections of the child that says `nonce`. */
  async expect (nonce: string): Promise<Connections> {
    return await new Promise((resolve, reject) => {
      this.expected.set(nonce, { conns: {}, resolve, reject })
    })
  }

  /** Gives up on `nonce`: connections already made are closed, later ones refused. */
  cancel (nonce: string, reason: Error): void {
    const e = this.expected.get(nonce)
    if (e === undefined) return
    this.expected.delete(nonce)
    for (const socket of Object.values(e.conns)) socket.destroy()
    e.reject(reason)
  }

  private accept (socket: Socket): void {
    this.open.add(socket)
    let head = Buffer.alloc(0)
    const timer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS)
    timer.unref()
    const done = (): void => {
      clearTimeout(timer)
      socket.removeListener('data', onData)
    }
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk])
      const nl = head.indexOf(10)
      if (nl === -1) {
        if (head.length > HELLO_MAX) { done(); socket.destroy() }
        return
      }
      done()
      socket.pause() // until the sandbox listens; nothing may be lost meanwhile
      const rest = head.subarray(nl + 1)
      if (rest.length > 0) socket.unshift(rest)
      this.hello(socket, head.subarray(0, nl).toString('latin1'))
    }
    socket.on('data', onData)
    socket.on('error', () => {})
    socket.once('close', () => { clearTimeout(timer); this.open.delete(socket) })
  }

  private hello (socket: Socket, line: string): void {
    const m = HELLO.exec(line)
    const e = m === null ? undefined : this.expected.get(m[1] as string)
    const kind = m?.[2] as StreamKind | undefined
    if (e === undefined || kind === undefined || e.conns[kind] !== undefined) {
      socket.destroy()
      return
    }
    e.conns[kind] = socket
    const { proto, stdout, stderr } = e.conns
    if (proto !== undefined && stdout !== undefined && stderr !== undefined) {
      this.expected.delete((m as RegExpExecArray)[1] as string)
      e.resolve({ proto, stdout, stderr })
    }
  }

  /**
   * Stops listening and ends every connection still open: at shutdown a
   * sandbox's are already closed, and one that is not is an orphan. (A
   * paused socket keeps no event loop alive, and server.close() waits for
   * every connection: found as a test that never finished.)
   */
  async close (): Promise<void> {
    for (const [nonce] of this.expected) this.cancel(nonce, new Error('rendezvous closed'))
    for (const socket of this.open) socket.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
    rmSync(this.dir, { recursive: true, force: true })
  }
}
