// The sandbox layer without HTTP (issue 2's figures), in the bench process:
// spawn-to-ready per runtime and fork-to-ready from the python zygote, and the
// warm round trip of Sandbox.run next to the bare IPC floor, a Python echo
// over the same kind of socket pair with no bwrap, no cgroup, no seccomp and
// no msgpack.
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import type { Socket } from 'node:net'
import { prepare } from '../daemon/compile/index.js'
import { loadConfig, sandboxHostUid, withDotenv, type Config, type Language } from '../daemon/config.js'
import { encodeFrame } from '../daemon/protocol.js'
import { spawnLaunch } from '../daemon/sandbox/process.js'
import { chooseLimitsBackend, limitsOf, type LimitsBackend } from '../daemon/sandbox/limits/index.js'
import { probeBwrap } from '../daemon/sandbox/probe.js'
import { runtimeSpec, RUNTIME_OF, type RuntimeFiles, type RuntimeName } from '../daemon/sandbox/runtimes.js'
import { Sandbox } from '../daemon/sandbox/sandbox.js'
import { seccompProgram } from '../daemon/sandbox/seccomp.js'
import { makeInstanceDir } from '../daemon/runtime-dir.js'
import { prepareRuntimeFiles } from '../daemon/runtime-files.js'
import { startForkers, type Forkers } from '../daemon/zygote/index.js'
import { Samples, type Latency } from './load.js'

export interface LayerOptions {
  /** measured calls per round trip series (a tenth more are run first, unmeasured) */
  readonly calls: number
  /** sandboxes started per runtime for spawn-to-ready */
  readonly spawns: number
}

/** Latencies in microseconds. */
export interface RoundTrip extends Latency { readonly calls: number }

export interface LayerResult {
  readonly limits: string
  readonly floor: RoundTrip
  /** python-forked: a python sandbox forked from the zygote */
  readonly warm: Record<'python' | 'javascript' | 'python-forked', RoundTrip>
  /** milliseconds from cgroup creation to the bootstrap's ready frame; python-forked: fork-to-ready; node-forked: fork-to-ready from the node zygote */
  readonly spawnToReady: Record<RuntimeName | 'python-forked' | 'node-forked', Latency & { readonly count: number }>
  readonly ratios: { readonly python_vs_floor_p50: number, readonly javascript_vs_floor_p50: number }
}

const INPUT = '{"a":3,"b":5}'
const CODE: Record<'python' | 'javascript', string> = { python: 'return event["a"] + event["b"]', javascript: 'return event.a + event.b' }
const ECHO = 'import socket\ns = socket.socket(fileno=3)\nwhile True:\n    d = s.recv(65536)\n    if not d: break\n    s.sendall(d)\n'

const micros = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1000
const ratio = (a: number, b: number): number => Math.round(a / b * 100) / 100

async function series (calls: number, once: () => Promise<void>): Promise<RoundTrip> {
  for (let i = 0; i < Math.ceil(calls / 10); i++) await once()
  const samples = new Samples()
  for (let i = 0; i < calls; i++) {
    const t = process.hrtime.bigint()
    await once()
    samples.push(micros(t))
  }
  return { ...Samples.latency([samples]), calls }
}

/** A frame as big as a warm run frame, echoed by a plain python3 over a socket pair. */
async function floor (calls: number, frameBytes: number): Promise<RoundTrip> {
  const child = spawn('/usr/bin/python3', ['-I', '-c', ECHO], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'] })
  const chan = child.stdio[3] as Socket
  const frame = Buffer.alloc(frameBytes, 120)
  let received = 0
  let done: (() => void) | null = null
  chan.on('data', (chunk: Buffer) => {
    received += chunk.length
    if (received >= frameBytes && done !== null) {
      received -= frameBytes
      const d = done
      done = null
      d()
    }
  })
  try {
    return await series(calls, async () => await new Promise<void>((resolve) => {
      done = resolve
      chan.write(frame)
    }))
  } finally {
    child.kill()
  }
}

/** python-forked, node-forked: forked by the runtime's zygote */
type Kind = RuntimeName | 'python-forked' | 'node-forked'

function starter (config: Config, limits: LimitsBackend, forkers: Forkers, files: RuntimeFiles) {
  const seccompFile = config.seccomp ? seccompProgram(config.root, config.stateDir) : null
  const hostUid = sandboxHostUid(config)
  const { disableUserns } = probeBwrap(hostUid)
  let seq = 0
  return async (kind: Kind): Promise<Sandbox> => {
    const runtime: RuntimeName = kind === 'python-forked' ? 'python' : kind === 'node-forked' ? 'node' : kind
    const viaZygote = kind === 'python-forked' || kind === 'node-forked'
    const id = `layer-${kind}-${++seq}`
    const sandboxLimits = await limits.create(id)
    const forker = forkers.byRuntime[runtime]
    if (viaZygote && forker?.usable !== true) throw new Error(`no zygote: ${forker?.unavailable ?? 'ZYGOTE=off'}`)
    if (viaZygote && forker?.stats(runtime).start !== 'fork') throw new Error(`no ${runtime} zygote: ${forker?.stats(runtime).startReason ?? ''}`)
    const launch = viaZygote
      ? (forker as NonNullable<typeof forker>).launch(sandboxLimits, runtime)
      : spawnLaunch({ runtime: runtimeSpec(runtime, files), hostUid, tmpBytes: config.sandboxTmpBytes, seccompFile, disableUserns }, sandboxLimits)
    return await Sandbox.start({
      id,
      runtime,
      limits: sandboxLimits,
      spawnTimeoutMs: config.spawnTimeoutMs,
      logMaxBytes: config.logMaxBytes,
      resultMaxBytes: config.resultMaxBytes
    }, launch)
  }
}

export async function measureSandboxLayer (opts: LayerOptions, cgroupName: string): Promise<LayerResult> {
  const config = loadConfig(withDotenv({ ...process.env, CGROUP_NAME: cgroupName }))
  const limits = await chooseLimitsBackend(config.limitsBackend, limitsOf(config), config.cgroupName)
  const instanceDir = makeInstanceDir(config.runtimeDir)
  const { files, zygoteProblem } = await prepareRuntimeFiles(config, instanceDir)
  const forkers = await startForkers({
    config: { ...config, zygote: 'on' },
    hostUid: sandboxHostUid(config),
    seccompFile: config.seccomp ? seccompProgram(config.root, config.stateDir) : null,
    instanceDir,
    files,
    zygoteProblem,
    warn: () => {}
  })
  try {
    const start = starter(config, limits, forkers, files)
    const spawnToReady = {} as Record<Kind, Latency & { count: number }>
    for (const runtime of ['python', 'node', 'python-forked', 'node-forked'] as const) {
      const samples = new Samples()
      for (let i = 0; i < opts.spawns; i++) {
        const t = process.hrtime.bigint()
        const sandbox = await start(runtime)
        samples.push(micros(t) / 1000)
        await sandbox.destroy()
      }
      spawnToReady[runtime] = { ...Samples.latency([samples]), count: opts.spawns }
    }
    const warm = {} as Record<'python' | 'javascript' | 'python-forked', RoundTrip>
    let frameBytes = 0
    for (const kind of ['python', 'javascript', 'python-forked'] as const) {
      const language: Language = kind === 'python-forked' ? 'python' : kind
      const prepared = await prepare(language, CODE[language === 'python' ? 'python' : 'javascript'])
      const sandbox = await start(kind === 'python-forked' ? kind : RUNTIME_OF[language])
      const call = { key: prepared.key, code: prepared.code, input: INPUT, filename: prepared.filename, timeoutMs: 10_000 }
      frameBytes = Math.max(frameBytes, encodeFrame({ t: 'run', id: 1, key: prepared.key, input: INPUT, filename: prepared.filename }).length)
      try {
        warm[kind] = await series(opts.calls, async () => { await sandbox.run(call) })
      } finally {
        await sandbox.destroy()
      }
    }
    const bare = await floor(opts.calls, frameBytes)
    return {
      limits: limits.name,
      floor: bare,
      warm,
      spawnToReady,
      ratios: { python_vs_floor_p50: ratio(warm.python.p50, bare.p50), javascript_vs_floor_p50: ratio(warm.javascript.p50, bare.p50) }
    }
  } finally {
    await forkers.close()
    rmSync(instanceDir, { recursive: true, force: true })
    await limits.close()
  }
}
