// The real daemon as a child process (node dist/daemon/main.js), on a free port.
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { hierarchyRoots } from '../../daemon/sandbox/limits/cgroup-v1.js'
import { removeCgroup } from '../../daemon/sandbox/limits/cgroupfs.js'
import { checkAnswer } from './openapi.js'
import { diesWithTest, untapped } from './processes.js'

const MAIN = fileURLToPath(new URL('../../daemon/main.js', import.meta.url))
let n = 0

export interface Daemon {
  readonly url: string
  readonly port: number
  readonly proc: ChildProcess
  readonly logs: Array<Record<string, unknown>>
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** A fresh STATE_DIR, reachable by the sandbox uid as a daemon's must be (layers of packages are bound from it). */
export function stateDir (): string {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-test-'))
  chmodSync(dir, 0o755)
  return dir
}

/**
 * Starts the daemon and resolves once it logs "hearth listening". `main`:
 * another checkout's daemon; `prefix`: a command that executes it (setpriv
 * dropping a capability).
 */
export async function startDaemon (t: Test, env: Record<string, string> = {}, main = MAIN, prefix: readonly string[] = []): Promise<Daemon> {
  const cgroupName = `hearth-http-${process.pid}-${++n}`
  const argv = diesWithTest(untapped([...prefix, process.execPath, main]))
  const proc = spawn(argv[0] as string, argv.slice(1), {
    env: {
      PATH: process.env.PATH,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      POOL_MIN: '0',
      POOL_MAX: '4',
      STATE_DIR: env.STATE_DIR ?? stateDir(),
      CGROUP_NAME: cgroupName,
      LOG_LEVEL: 'info',
      ...env
    },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const logs: Array<Record<string, unknown>> = []
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }))
  })
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = ''
    const timer = setTimeout(() => reject(new Error('daemon did not start in 20 s')), 20_000)
    proc.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const line of lines) {
        let entry: Record<string, unknown>
        try { entry = JSON.parse(line) } catch { continue }
        logs.push(entry)
        if (entry.msg === 'hearth listening') {
          clearTimeout(timer)
          resolve(Number(entry.port))
        }
      }
    })
    void exited.then(({ code }) => reject(new Error(`daemon exited with ${code} before listening`)))
  })
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null, signal: NodeJS.Signals | null }> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
    return await exited
  }
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
    if (env.CGROUP_NAME === undefined) await removeLeftCgroups(cgroupName)
  })
  return { url: `http://127.0.0.1:${port}`, port, proc, logs, exited, stop }
}

export interface Reply { status: number, headers: Headers, body: any }

export async function post (url: string, body: unknown, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' }, ...init })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch {}
  checkAnswer('POST', url, res.status, res.headers.get('content-type'), parsed)
  return { status: res.status, headers: res.headers, body: parsed }
}

export async function get (url: string, method = 'GET'): Promise<Reply> {
  const res = await fetch(url, { method })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch {}
  checkAnswer(method, url, res.status, res.headers.get('content-type'), parsed)
  return { status: res.status, headers: res.headers, body: parsed }
}

/** Reads an SSE response into its events, with the time each arrived (ms after the request). */
export async function sse (url: string, body: unknown, signal?: AbortSignal): Promise<Array<{ at: number, event: Record<string, unknown> }>> {
  const started = Date.now()
  const res = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal })
  checkAnswer('POST', url, res.status, res.headers.get('content-type'), null)
  if (res.headers.get('content-type') !== 'text/event-stream') throw new Error(`not an event stream: ${res.status} ${await res.text()}`)
  const events: Array<{ at: number, event: Record<string, unknown> }> = []
  const decoder = new TextDecoder()
  let buffered = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true })
    let i: number
    while ((i = buffered.indexOf('\n\n')) !== -1) {
      const frame = buffered.slice(0, i)
      buffered = buffered.slice(i + 2)
      if (!frame.startsWith('data: ')) throw new Error(`bad SSE frame: ${JSON.stringify(frame)}`)
      events.push({ at: Date.now() - started, event: JSON.parse(frame.slice(6)) })
    }
  }
  return events
}

/**
 * What a daemon a test killed (SIGKILL) leaves in the cgroup v1 hierarchies:
 * its cgroups, empty, which no later daemon removes, since each test daemon has
 * a CGROUP_NAME of its own. Removed here, so that runs do not pile them up.
 */
export async function removeLeftCgroups (name: string): Promise<void> {
  const roots = hierarchyRoots()
  if (!(roots instanceof Map)) return // no cgroup v1 here
  for (const root of roots.values()) {
    const top = join(root, name)
    if (!existsSync(top)) continue
    const children = readdirSync(top, { withFileTypes: true }).filter((e) => e.isDirectory())
    await Promise.all(children.map(async (e) => await removeCgroup(join(top, e.name), undefined, 10)))
    await removeCgroup(top, undefined, 10)
  }
}
