// Where forked children meet the daemon: a unix socket each connects to for
// its frames, with a hello line naming the fork's nonce, after it made two
// named pipes, its stdout and stderr (isolate.c, make_pipe), in its zygote's
// pipes directory; the daemon opens them for reading when the hello comes. A
// connection whose nonce nobody expects is closed.
import { chmodSync, chownSync, closeSync, constants, mkdirSync, openSync, readFileSync, rmSync, unlinkSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { HELLO, HELLO_MAX } from '../protocol.js'
import { readEnd } from '../sandbox/process.js'

export interface Connections {
  readonly proto: Socket
  /** the read ends of the child's stdout and stderr pipes */
  readonly stdout: Socket
  readonly stderr: Socket
}

interface Expected {
  /** where the child makes its pipes, as the daemon reaches it */
  readonly pipes: string
  readonly resolve: (c: Connections) => void
  readonly reject: (e: Error) => void
}

/**
 * Where a zygote's children make their pipes: a tmpfs of the zygote's own
 * (zygote/argv.ts) on this directory of the rendezvous directory; the daemon
 * reaches it through /proc/<zygote>/root. Not the rendezvous directory itself:
 * making and removing two pipes there (an ext4 /run, measured on the
 * development VM) cost a run-now call ~17 % more machine CPU. Unless the
 * daemon cannot reach a zygote's root (reachesZygoteRoots): then this
 * directory itself is bound into the zygotes.
 */
export const PIPES = 'pipes'
/** the rendezvous directory as a zygote sees it (zygote/argv.ts binds it there; isolate.c) */
export const RENDEZVOUS_IN_ZYGOTE = '/run/hearth'
export const PIPES_IN_ZYGOTE = `${RENDEZVOUS_IN_ZYGOTE}/${PIPES}`

const HELLO_TIMEOUT_MS = 5000
const CAP_SYS_PTRACE = 19n

/**
 * Whether the daemon may open files through /proc/<zygote>/root: a zygote
 * of its own uid (`hostUid` null), or CAP_SYS_PTRACE, which root has unless
 * its bounding set drops it (systemd's CapabilityBoundingSet=). `status`:
 * /proc/self/status.
 */
export function reachesZygoteRoots (hostUid: number | null, status = readFileSync('/proc/self/status', 'latin1')): boolean {
  if (hostUid === null) return true
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1]
  return eff !== undefined && ((BigInt(`0x${eff}`) >> CAP_SYS_PTRACE) & 1n) === 1n
}

export class Rendezvous {
  /** host directory bound into zygotes; holds only the socket and the pipes directory */
  readonly dir: string
  readonly path: string
  /** the pipes directory on the host: a zygote's own tmpfs's mount point, or itself bound into the zygotes (PIPES) */
  readonly pipes: string
  private readonly server: Server
  private readonly expected = new Map<string, Expected>()
  /** every connection not yet closed, handed over or not: close() ends them all */
  private readonly open = new Set<Socket>()

  private constructor (dir: string, server: Server) {
    this.dir = dir
    this.path = join(dir, 'sock')
    this.pipes = join(dir, PIPES)
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
    rmSync(rendezvous.pipes, { recursive: true, force: true })
    mkdirSync(rendezvous.pipes, { mode: 0o700 })
    if (ownerUid !== null) chownSync(rendezvous.pipes, ownerUid, ownerUid)
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

  /** Resolves with the connection and the pipes (made in `pipes`) of the child that says `nonce`. */
  async expect (nonce: string, pipes: string): Promise<Connections> {
    return await new Promise((resolve, reject) => {
      this.expected.set(nonce, { pipes, resolve, reject })
    })
  }

  /** Gives up on `nonce`: a later hello is refused, pipes it made are removed. */
  cancel (nonce: string, reason: Error): void {
    const e = this.expected.get(nonce)
    if (e === undefined) return
    this.expected.delete(nonce)
    removePipes(e.pipes, nonce)
    e.reject(reason)
  }

  /** The read ends of `nonce`'s pipes in `dir`, unlinked (nothing else can open them). */
  private openPipes (dir: string, nonce: string): [Socket, Socket] {
    const fds: number[] = []
    try {
      for (const path of pipePaths(dir, nonce)) {
        // O_NOFOLLOW: through /proc/<zygote>/root an absolute link would resolve on the host
        fds.push(openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW))
        unlinkSync(path)
      }
    } catch (err) {
      for (const fd of fds) closeSync(fd)
      throw err
    }
    return fds.map((fd) => {
      const socket = readEnd(fd)
      socket.pause() // until the sandbox listens, as the connection
      this.open.add(socket)
      socket.once('close', () => this.open.delete(socket))
      return socket
    }) as [Socket, Socket]
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
    const nonce = HELLO.exec(line)?.[1]
    const e = nonce === undefined ? undefined : this.expected.get(nonce)
    if (nonce === undefined || e === undefined) {
      socket.destroy()
      return
    }
    this.expected.delete(nonce)
    let pipes: [Socket, Socket]
    try {
      pipes = this.openPipes(e.pipes, nonce)
    } catch (err) {
      socket.destroy()
      removePipes(e.pipes, nonce)
      e.reject(new Error(`the forked child's pipes: ${(err as Error).message}`))
      return
    }
    e.resolve({ proto: socket, stdout: pipes[0], stderr: pipes[1] })
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

function pipePaths (dir: string, nonce: string): [string, string] {
  return [join(dir, `${nonce}-1`), join(dir, `${nonce}-2`)]
}

/** Removes what there is of `nonce`'s pipes (its zygote may be gone, and its tmpfs with it). */
function removePipes (dir: string, nonce: string): void {
  for (const path of pipePaths(dir, nonce)) {
    try {
      rmSync(path, { force: true })
    } catch {}
  }
}
