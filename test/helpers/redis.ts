// A real redis-server on a free loopback port, owned by one test; or a real
// three-master Redis Cluster (HEARTH_TEST_REDIS=cluster: startRedis()).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { diesWithTest } from './processes.js'

/** What a test's daemons are given, and what the outage tests do to it. */
export interface AnyRedis {
  readonly env: Record<string, string>
  up: () => Promise<void>
  down: () => Promise<void>
}

/** A single server, or with HEARTH_TEST_REDIS=cluster a three-master cluster: the same tests run against both. */
export async function startRedis (t: Test): Promise<AnyRedis> {
  return process.env.HEARTH_TEST_REDIS === 'cluster' ? await TestRedisCluster.start(t) : await TestRedis.start(t)
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Whether a Redis answers PING on the port (within a second: whatever else holds the port may say nothing). */
async function answers (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    const done = (ok: boolean): void => { s.destroy(); resolve(ok) }
    s.setTimeout(1000, () => done(false))
    s.once('connect', () => { s.write('PING\r\n') })
    s.once('data', (d) => done(/^(\+PONG|-NOAUTH)/.test(d.toString())))
    s.once('error', () => done(false))
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
    let redis: TestRedis | undefined
    await onOtherPorts(async () => {
      redis = new TestRedis(await freePort(), args)
      await redis.up()
    }, async () => await redis?.down())
    const started = redis as TestRedis
    t.teardown(async () => await started.down())
    return started
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get env (): Record<string, string> {
    return { REDIS_URL: this.url }
  }

  async up (): Promise<void> {
    const [command, ...args] = diesWithTest(['redis-server', '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...this.args])
    const child = spawn(command as string, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    await whenAnswering(this.port, child)
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

/**
 * Three masters (`redis-server --cluster-enabled yes` ×3, slots spread by
 * `redis-cli --cluster create`), no replicas. down() kills every node; up()
 * restarts them from their nodes.conf, and resolves once the cluster is ok.
 */
export class TestRedisCluster implements AnyRedis {
  private readonly children = new Map<number, ChildProcess>()

  private constructor (private ports: readonly number[], private readonly dir: string) {}

  static async start (t: Test): Promise<TestRedisCluster> {
    const cluster = new TestRedisCluster([], mkdtempSync(join(tmpdir(), 'hearth-cluster-')))
    t.teardown(async () => {
      await cluster.down()
      rmSync(cluster.dir, { recursive: true, force: true })
    })
    await onOtherPorts(async () => {
      cluster.ports = await clusterPorts()
      await cluster.startNodes()
    }, async () => await cluster.down())
    execFileSync('redis-cli', ['--cluster', 'create', ...cluster.ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore', timeout: 30_000 })
    await cluster.healthy()
    return cluster
  }

  get env (): Record<string, string> {
    return { REDIS_CLUSTER_NODES: this.ports.map((p) => `127.0.0.1:${p}`).join(',') }
  }

  private async startNodes (): Promise<void> {
    for (const port of this.ports) {
      const [command, ...args] = diesWithTest(['redis-server',
        '--port', String(port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning',
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'
      ])
      const child = spawn(command as string, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      this.children.set(port, child)
    }
    for (const port of this.ports) await whenAnswering(port, this.children.get(port) as ChildProcess)
  }

  /** Every node says cluster_state:ok. */
  private async healthy (): Promise<void> {
    const until = Date.now() + 30_000
    for (const port of this.ports) {
      for (;;) {
        let info = ''
        try { info = execFileSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8', timeout: 5000 }) } catch {}
        if (info.includes('cluster_state:ok')) break
        if (Date.now() > until) throw new Error(`cluster node ${port} is not ok: ${info}`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
  }

  async up (): Promise<void> {
    await this.startNodes()
    await this.healthy()
  }

  async down (): Promise<void> {
    const children = [...this.children.values()].filter((c) => c.exitCode === null && c.signalCode === null)
    this.children.clear()
    await Promise.all(children.map(async (c) => {
      const exited = new Promise((resolve) => c.once('exit', resolve))
      c.kill('SIGKILL')
      await exited
    }))
  }
}

class ServerExited extends Error {}

/**
 * start(), again after stop() while a server exits before it answers (up to
 * three tries): a port free when chosen can be taken before the server binds
 * it, by other suites running at once. start() chooses its ports anew.
 */
async function onOtherPorts (start: () => Promise<void>, stop: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await start()
      return
    } catch (err) {
      await stop()
      if (!(err instanceof ServerExited) || attempt === 3) throw err
    }
  }
}

/** Resolves once the server on the port answers; rejects with its log if it exits first, or after 10 s. */
async function whenAnswering (port: number, child: ChildProcess): Promise<void> {
  let log = ''
  const keep = (d: Buffer): void => { log = (log + d.toString()).slice(-2000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const until = Date.now() + 10_000
  while (!(await answers(port))) {
    if (child.exitCode !== null) throw new ServerExited(`redis-server on ${port} exited before it answered: ${log}`)
    if (Date.now() > until) throw new Error(`redis-server on ${port} did not start: ${log}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Three distinct ports, each with its cluster bus port (port + 10000) free too. */
async function clusterPorts (): Promise<number[]> {
  const ports: number[] = []
  while (ports.length < 3) {
    const p = await freePort()
    if (p < 55000 && !ports.includes(p) && await canListen(p + 10000)) ports.push(p)
  }
  return ports
}

async function canListen (port: number): Promise<boolean> {
  const server = createServer()
  return await new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}
