// The default store when no Redis is configured: a private redis-server (Debian's
// package) as a supervised child, on a unix socket in the state directory, with
// AOF persistence so functions survive a restart.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../log.js'

const RESTART_MAX_MS = 10_000

export class EmbeddedRedis {
  readonly socket: string
  private readonly dir: string
  private readonly pidfile: string
  private child: ChildProcess | null = null
  private stopping = false
  private restarts = 0
  private readonly log: Logger

  constructor (stateDir: string, log: Logger) {
    this.dir = join(stateDir, 'redis')
    this.socket = join(this.dir, 'redis.sock')
    this.pidfile = join(this.dir, 'redis.pid')
    this.log = log
  }

  /** Starts redis-server and resolves once it accepts connections. */
  async start (): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 })
    await this.reapOrphan()
    this.spawn()
    const until = Date.now() + 10_000
    while (!existsSync(this.socket)) {
      if (this.child === null || Date.now() > until) throw new Error(`embedded redis-server did not start (see ${this.dir})`)
      await sleep(20)
    }
  }

  private spawn (): void {
    // setpriv --pdeathsig: redis gets SIGTERM (it flushes its AOF and exits)
    // when this daemon dies, even by SIGKILL, instead of living on under PID 1.
    const child = spawn('setpriv', ['--pdeathsig', 'TERM', '--', 'redis-server',
      '--port', '0', // no TCP: only this daemon talks to it
      '--unixsocket', this.socket,
      '--unixsocketperm', '700',
      '--dir', this.dir,
      '--pidfile', this.pidfile,
      '--appendonly', 'yes',
      '--appendfsync', 'everysec',
      '--save', '',
      '--daemonize', 'no',
      '--loglevel', 'warning'
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.child = child
    child.stderr?.on('data', (chunk: Buffer) => this.log.warn({ redis: chunk.toString().trim() }, 'embedded redis-server'))
    child.once('error', (err) => this.log.error({ err }, 'cannot start redis-server'))
    child.once('exit', (code, signal) => {
      this.child = null
      if (this.stopping) return
      // Supervised: restart with backoff; ioredis reconnects by itself meanwhile.
      const delay = Math.min(200 * 2 ** this.restarts++, RESTART_MAX_MS)
      this.log.error({ code, signal, restartInMs: delay }, 'embedded redis-server exited')
      setTimeout(() => { if (!this.stopping) this.spawn() }, delay).unref()
    })
  }

  /** A redis-server left by a daemon that was killed holds our socket: stop it. */
  private async reapOrphan (): Promise<void> {
    let pid = 0
    try { pid = Number(readFileSync(this.pidfile, 'utf8').trim()) } catch { return }
    if (!(pid > 0)) return
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server')) return
      process.kill(pid, 'SIGTERM')
    } catch {
      return
    }
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await sleep(50)
  }

  /** SIGTERM lets redis flush its AOF; resolves when it has exited. */
  async stop (): Promise<void> {
    this.stopping = true
    const child = this.child
    if (child === null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
}
