// A real redis-server on a free loopback port, owned by one test.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, connect } from 'node:net'
import type { Test } from 'tap'

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function answers (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => { s.write('PING\r\n') })
    s.once('data', (d) => { s.destroy(); resolve(/^(\+PONG|-NOAUTH)/.test(d.toString())) })
    s.once('error', () => resolve(false))
  })
}

export class TestRedis {
  readonly port: number
  private child: ChildProcess | null = null

  private readonly args: readonly string[]

  private constructor (port: number, args: readonly string[]) {
    this.port = port
    this.args = args
  }

  /** `args`: more redis-server options, such as ['--requirepass', 'pw']. */
  static async start (t: Test, args: readonly string[] = []): Promise<TestRedis> {
    const redis = new TestRedis(await freePort(), args)
    await redis.up()
    t.teardown(async () => await redis.down())
    return redis
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async up (): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...this.args], { stdio: 'ignore' })
    const until = Date.now() + 10_000
    while (!(await answers(this.port))) {
      if (Date.now() > until) throw new Error('redis-server did not start')
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }

  /** SIGSTOP: the server keeps its connections but answers nothing, as a hung Redis does. */
  freeze (): void {
    this.child?.kill('SIGSTOP')
  }

  thaw (): void {
    this.child?.kill('SIGCONT')
  }

  async down (): Promise<void> {
    const child = this.child
    if (child === null || child.exitCode !== null) return
    this.child = null
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    child.kill('SIGCONT') // a frozen server dies too
    await exited
  }
}
