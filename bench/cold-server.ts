// The cold baseline: go-faas's model, where every request pays a fresh sandbox.
// Per request: a fresh cgroup (hearth's own limits backend), the exact bwrap argv
// of a hearth sandbox (daemon/sandbox/argv.ts, seccomp included), and a one-shot
// wrapper (bench/wrappers/) instead of the resident bootstrap; the code goes in on
// stdin, the result comes back as the last stdout line. Same HTTP front (uWS),
// same code preparation (daemon/compile/), same response body as hearth.
//
// Run as its own process: `node dist/bench/cold-server.js`, configured by hearth's
// own variables (MAX_MEMORY, MAX_CPUS, MAX_PIDS, SECCOMP, CGROUP_NAME, STATE_DIR...).
// Prints {"msg":"listening","port":N} once it listens. Routes: POST /upload,
// POST /run/<path>, POST /run-now (go-faas shapes), GET /stats.
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { closeSync, openSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import uWS, { type HttpResponse } from 'uWebSockets.js'
import { prepare } from '../daemon/compile/index.js'
import { LANGUAGES, loadConfig, ROOT, sandboxHostUid, withDotenv, type Language } from '../daemon/config.js'
import { resultBody, typeResult } from '../daemon/result.js'
import { sandboxArgv } from '../daemon/sandbox/argv.js'
import { chooseLimitsBackend, limitsOf } from '../daemon/sandbox/limits/index.js'
import { RUNTIME_OF, scriptSpec, type RuntimeName, type RuntimeSpec } from '../daemon/sandbox/runtimes.js'
import { seccompProgram } from '../daemon/sandbox/seccomp.js'
import { makeInstanceDir } from '../daemon/runtime-dir.js'
import { install } from '../daemon/runtime-files.js'

const OUTPUT_MAX = 1 << 20

const config = loadConfig(withDotenv())
// The wrappers are copied where the sandbox uid can read them, as the daemon
// does with its bootstraps: the checkout may be private (a clone under /root).
const instanceDir = makeInstanceDir(config.runtimeDir)
process.on('exit', () => rmSync(instanceDir, { recursive: true, force: true }))

function wrapperSpec (name: RuntimeName): RuntimeSpec {
  const file = name === 'python' ? 'cold.py' : 'cold.mjs'
  return scriptSpec(name, { src: install(join(ROOT, 'bench/wrappers', file), join(instanceDir, 'wrappers', file)), dest: `/hearth/${file}` })
}

const limits = await chooseLimitsBackend(config.limitsBackend, limitsOf(config), config.cgroupName)
const seccompFile = config.seccomp ? seccompProgram(config.root, config.stateDir) : null
const hostUid = sandboxHostUid(config)
const specs = { python: wrapperSpec('python'), node: wrapperSpec('node') }
const functions = new Map<string, { language: Language, code: string }>()
const teardowns = new Set<Promise<void>>()
const stats = { spawned: 0, failed: 0, inFlight: 0 }
let seq = 0

interface ColdOutcome { status: number, body: string }

/** One request's sandbox, from cgroup to exit; the cgroup is removed off the request path. */
async function runCold (language: Language, code: string, input: string, onAbort: (kill: () => void) => void): Promise<ColdOutcome> {
  const prepared = await prepare(language, code)
  const id = `cold-${process.pid}-${++seq}`
  // Limits of its own (the same figures, another object): a new cgroup made and
  // removed for every request, as go-faas does, never a spare handed on (spares.ts).
  const sandboxLimits = await limits.create(id, { ...limits.limits })
  const seccompFd = seccompFile === null ? null : openSync(seccompFile, 'r')
  const argv = sandboxArgv({
    runtime: specs[RUNTIME_OF[language]],
    limitsPrefix: sandboxLimits.prefix,
    hostUid,
    tmpBytes: config.sandboxTmpBytes,
    seccompFd: seccompFd === null ? null : 4
  })
  stats.spawned++
  let child: ChildProcess
  try {
    child = spawn(argv[0] as string, argv.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe', 'ignore', seccompFd ?? 'ignore'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }
    })
  } finally {
    if (seccompFd !== null) closeSync(seccompFd)
  }
  // stdin, stdout and stderr are pipes (stdio above)
  const { stdin, stdout, stderr } = child as ChildProcessWithoutNullStreams
  const out: Buffer[] = []
  const err: Buffer[] = []
  let outBytes = 0
  stdout.on('data', (b: Buffer) => { if ((outBytes += b.length) <= OUTPUT_MAX) out.push(b) })
  stderr.on('data', (b: Buffer) => { if (err.length < 64) err.push(b) })
  stdin.on('error', () => {})
  stdin.end(JSON.stringify({ code: prepared.code, input, filename: prepared.filename }))
  const timer = setTimeout(() => child.kill('SIGKILL'), config.timeoutMs)
  onAbort(() => child.kill('SIGKILL'))
  const exit = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null))
    child.once('close', (code) => resolve(code))
  })
  clearTimeout(timer)
  const teardown = sandboxLimits.destroy().catch(() => {})
  teardowns.add(teardown)
  void teardown.then(() => teardowns.delete(teardown))
  const lines = Buffer.concat(out).toString('utf8').split('\n').filter((l) => l.trim() !== '')
  if (exit !== 0) {
    stats.failed++
    const message = Buffer.concat(err).toString('utf8').trim().split('\n').slice(-3).join(' | ') || `sandbox exited with ${String(exit)}`
    return { status: 422, body: JSON.stringify({ error: { code: 'script_error', message } }) }
  }
  const last = lines[lines.length - 1]
  return { status: 200, body: resultBody(last === undefined ? typeResult({ stdout: '' }) : typeResult({ json: last })) }
}

function reply (res: HttpResponse, state: { aborted: boolean }, status: number, body: string): void {
  if (state.aborted) return
  res.cork(() => {
    res.writeStatus(status === 200 ? '200 OK' : `${status} Error`).writeHeader('content-type', 'application/json').end(body)
  })
}

const fail = (code: string, message: string): string => JSON.stringify({ error: { code, message } })

type Handler = (body: Record<string, unknown>, url: string, onAbort: (kill: () => void) => void) => Promise<ColdOutcome>

function route (handler: Handler) {
  return (res: HttpResponse, req: { getUrl: () => string }): void => {
    const url = req.getUrl()
    const state = { aborted: false }
    let kill: (() => void) | null = null
    stats.inFlight++
    res.onAborted(() => {
      state.aborted = true
      kill?.()
    })
    const chunks: Buffer[] = []
    res.onData((chunk, isLast) => {
      chunks.push(Buffer.from(chunk.slice(0)))
      if (!isLast) return
      let body: Record<string, unknown>
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
        if (body === null || typeof body !== 'object') throw new Error('not an object')
      } catch {
        stats.inFlight--
        reply(res, state, 400, fail('invalid_json', 'the body is not a JSON object'))
        return
      }
      handler(body, url, (k) => { kill = k }).then(
        (o) => reply(res, state, o.status, o.body),
        (e: Error) => reply(res, state, (e as { status?: number }).status ?? 500, fail('internal', e.message))
      ).finally(() => { stats.inFlight-- })
    })
  }
}

function inputText (body: Record<string, unknown>): string {
  const input = body.input
  if (input === undefined) return '{}'
  return typeof input === 'string' ? input : JSON.stringify(input)
}

function language (value: unknown): Language {
  if (!(LANGUAGES as readonly unknown[]).includes(value)) throw Object.assign(new Error('language must be python, javascript or typescript'), { status: 400 })
  return value as Language
}

const app = uWS.App()
  .post('/upload', route(async (body) => {
    if (typeof body.path !== 'string' || typeof body.code !== 'string') return { status: 400, body: fail('invalid_field', 'path and code must be strings') }
    functions.set(body.path, { language: language(body.language), code: body.code })
    return { status: 200, body: JSON.stringify({ path: body.path, language: body.language, version: 1 }) }
  }))
  .post('/run/*', route(async (body, url, onAbort) => {
    const fn = functions.get(url.slice('/run/'.length))
    if (fn === undefined) return { status: 404, body: fail('function_not_found', `no function at ${url}`) }
    return await runCold(fn.language, fn.code, inputText(body), onAbort)
  }))
  .post('/run-now', route(async (body, _url, onAbort) => {
    if (typeof body.code !== 'string') return { status: 400, body: fail('invalid_field', 'code must be a string') }
    return await runCold(language(body.language), body.code, inputText(body), onAbort)
  }))
  .get('/stats', (res) => {
    res.cork(() => res.writeHeader('content-type', 'application/json').end(JSON.stringify({ ...stats, teardowns: teardowns.size, limits: limits.name, cgroups: limits.cgroups?.() })))
  })

app.listen(config.httpHost, config.httpPort, (socket) => {
  if (socket === false) {
    process.stderr.write(`cold-server: cannot listen on ${config.httpHost}:${config.httpPort}\n`)
    process.exit(1)
  }
  process.stdout.write(JSON.stringify({ msg: 'listening', port: uWS.us_socket_local_port(socket as unknown as uWS.us_socket), limits: limits.name }) + '\n')
  let stopping = false
  const stop = (): void => {
    if (stopping) process.exit(1)
    stopping = true
    uWS.us_listen_socket_close(socket)
    app.close()
    // Every sandbox's cgroup is gone before the parent cgroup is removed.
    const deadline = setTimeout(() => process.exit(1), 15_000)
    void (async () => {
      while (teardowns.size > 0) await Promise.all([...teardowns])
      await limits.close()
      clearTimeout(deadline)
      process.exit(0)
    })()
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
})
