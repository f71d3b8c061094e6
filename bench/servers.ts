// The servers under test, each its own child process so that the load generator
// never shares their event loop: the bare uWS server, the cold baseline, hearth.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export interface Server {
  readonly kind: 'bare-uws' | 'cold' | 'hearth'
  readonly pid: number
  readonly url: string
  /** sandboxes this server has spawned so far */
  spawned: () => Promise<number>
  /** the last lines the server wrote (for diagnostics) */
  logTail: () => string
  /** SIGTERM, then SIGKILL after a grace period; resolves once it exited */
  stop: () => Promise<number | null>
}

const script = (rel: string): string => fileURLToPath(new URL(rel, import.meta.url))
let cgroupSeq = 0

/** A cgroup name no other daemon uses (hearth and the cold server remove theirs on exit). */
export function cgroupName (): string {
  return `hearth-bench-${process.pid}-${++cgroupSeq}`
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

export async function getJson (url: string): Promise<{ status: number, body: any }> {
  const res = await fetch(url)
  return { status: res.status, body: await res.json() }
}

export async function postJson (url: string, body: unknown): Promise<{ status: number, body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch {}
  return { status: res.status, body: parsed }
}

class Child {
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  private readonly tail: string[] = []

  constructor (argv: string[], env: NodeJS.ProcessEnv, onLine?: (line: string) => void) {
    // SIGTERM when the bench ends, however it ends (killed, or a timed-out
    // test's): its servers go with it, not on as orphans. Set on the server
    // itself (PR_SET_PDEATHSIG, kept across the exec): its pid is the child's.
    this.child = spawn('setpriv', ['--pdeathsig', 'TERM', '--', process.execPath, ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)))
    for (const stream of [this.child.stdout, this.child.stderr]) {
      if (stream === null) continue
      createInterface({ input: stream }).on('line', (line) => {
        this.tail.push(line)
        if (this.tail.length > 40) this.tail.shift()
        onLine?.(line)
      })
    }
  }

  logTail (): string {
    return this.tail.join('\n')
  }

  async stop (graceMs = 20_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs)
    const code = await this.exited
    clearTimeout(timer)
    return code
  }
}

/** Starts a bench server script that prints {"msg":"listening","port":N}. */
async function startListening (kind: 'bare-uws' | 'cold', file: string, env: NodeJS.ProcessEnv): Promise<{ child: Child, port: number }> {
  let onPort: (port: number) => void = () => {}
  const portSeen = new Promise<number>((resolve) => { onPort = resolve })
  const child = new Child([script(file)], env, (line) => {
    try {
      const msg = JSON.parse(line) as { msg?: string, port?: number }
      if (msg.msg === 'listening' && typeof msg.port === 'number') onPort(msg.port)
    } catch {}
  })
  const port = await Promise.race([portSeen, child.exited.then(() => null), sleep(15_000, null, { ref: false })])
  if (port === null) {
    await child.stop(1000)
    throw new Error(`${kind} server did not start:\n${child.logTail()}`)
  }
  return { child, port }
}

export async function startBare (): Promise<Server> {
  const { child, port } = await startListening('bare-uws', './bare-server.js', { ...process.env, HTTP_HOST: '127.0.0.1', HTTP_PORT: '0' })
  return {
    kind: 'bare-uws',
    pid: child.child.pid as number,
    url: `http://127.0.0.1:${port}`,
    spawned: async () => 0,
    logTail: () => child.logTail(),
    stop: async () => await child.stop()
  }
}

export async function startCold (): Promise<Server> {
  const stateDir = mkdtempSync(join(tmpdir(), 'hearth-bench-cold-'))
  const { child, port } = await startListening('cold', './cold-server.js', {
    ...process.env, HTTP_HOST: '127.0.0.1', HTTP_PORT: '0', STATE_DIR: stateDir, CGROUP_NAME: cgroupName()
  })
  const url = `http://127.0.0.1:${port}`
  return {
    kind: 'cold',
    pid: child.child.pid as number,
    url,
    spawned: async () => Number((await getJson(`${url}/stats`)).body.spawned),
    logTail: () => child.logTail(),
    async stop () {
      const code = await child.stop()
      rmSync(stateDir, { recursive: true, force: true })
      return code
    }
  }
}

export interface HearthServer extends Server {
  readyz: () => Promise<any>
  /** waits until no pool is starting or waiting for sandboxes (after run-now load) */
  settle: (timeoutMs?: number) => Promise<void>
}

export interface HearthSettings {
  readonly warmMaxPerFunction: number
  /** more of hearth's environment (ZYGOTE=off: the spawn path) */
  readonly env?: Readonly<Record<string, string>>
  /** directory for --cpu-prof output, or null not to profile */
  readonly cpuProfDir?: string | null
}

export async function startHearth (s: HearthSettings): Promise<HearthServer> {
  const stateDir = mkdtempSync(join(tmpdir(), 'hearth-bench-'))
  const port = await freePort()
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: String(port),
    STATE_DIR: stateDir,
    // info would write a log line per request: not what a deployment measures.
    LOG_LEVEL: 'warn',
    CGROUP_NAME: cgroupName(),
    WARM_MAX_PER_FUNCTION: String(s.warmMaxPerFunction),
    WARM_MAX_TOTAL: String(Math.max(32, 4 * s.warmMaxPerFunction)),
    ...s.env
  }
  // On the command line: NODE_OPTIONS may not carry --cpu-prof.
  const prof = s.cpuProfDir == null ? [] : ['--cpu-prof', `--cpu-prof-dir=${s.cpuProfDir}`]
  const child = new Child([...prof, script('../daemon/main.js')], env)
  const url = `http://127.0.0.1:${port}`
  const readyz = async (): Promise<any> => (await getJson(`${url}/readyz`)).body
  const until = Date.now() + 30_000
  for (;;) {
    if (child.child.exitCode !== null) throw new Error(`hearth exited during start-up:\n${child.logTail()}`)
    try {
      if ((await getJson(`${url}/readyz`)).status === 200) break
    } catch {}
    if (Date.now() > until) {
      await child.stop(1000)
      throw new Error(`hearth not ready after 30 s:\n${child.logTail()}`)
    }
    await sleep(100)
  }
  return {
    kind: 'hearth',
    pid: child.child.pid as number,
    url,
    readyz,
    spawned: async () => ((await readyz()).pools as Array<{ spawned: number }>).reduce((n, p) => n + p.spawned, 0),
    async settle (timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs
      while (Date.now() < end) {
        const pools = (await readyz()).pools as Array<{ starting: number, waiting: number, ready: number }>
        if (pools.every((p) => p.starting === 0 && p.waiting === 0 && p.ready > 0)) return
        await sleep(200)
      }
    },
    logTail: () => child.logTail(),
    async stop () {
      const code = await child.stop()
      rmSync(stateDir, { recursive: true, force: true })
      return code
    }
  }
}
