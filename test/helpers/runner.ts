// A real Runner (real bwrap, real cgroups when writable) for tests.
import type { Test } from 'tap'
import { rmSync } from 'node:fs'
import { loadConfig, sandboxHostUid, type Config, type Env } from '../../daemon/config.js'
import { makeInstanceDir } from '../../daemon/runtime-dir.js'
import { prepareRuntimeFiles, type RuntimeFiles } from '../../daemon/runtime-files.js'
import { startForkers } from '../../daemon/zygote/index.js'
import type { LanguagePoolStats } from '../../daemon/pool/language-pool.js'
import { Runner, type RunnerOptions, type RunRequest, type RunResult } from '../../daemon/pool/runner.js'
import { chooseLimitsBackend, limitsOf, type LimitsBackend } from '../../daemon/sandbox/limits/index.js'
import { seccompProgram } from '../../daemon/sandbox/seccomp.js'
import { HearthError } from '../../daemon/errors.js'

let n = 0

export interface TestRunner {
  runner: Runner
  config: Config
  limits: LimitsBackend
  /** what the zygote set-up warned about */
  warnings: Array<Record<string, unknown>>
}

export interface RunnerExtras extends Partial<RunnerOptions> {
  /** false: the python zygote starts without capabilities, which forces the spawn fallback */
  readonly zygoteCapabilities?: boolean
  /** the real limits backend, with a fault of the test's put in */
  readonly wrapLimits?: (real: LimitsBackend) => LimitsBackend
  /** the zygotes' command line, with a change of the test's */
  readonly wrapZygoteArgv?: (argv: string[]) => string[]
  /** what sandboxes run, with a change of the test's (a part missing) */
  readonly editFiles?: (files: RuntimeFiles) => RuntimeFiles
}

/** A Runner as the daemon wires it, python zygote included (unless ZYGOTE=off in `env`). */
export async function startRunner (t: Test, env: Env = {}, extra: RunnerExtras = {}): Promise<TestRunner> {
  const config = loadConfig({ POOL_MIN: '0', POOL_MAX: '4', TIMEOUT_SCRIPT: '10', ACQUIRE_TIMEOUT: '5', ...env })
  const real = await chooseLimitsBackend(config.limitsBackend, limitsOf(config), `hearth-test-${process.pid}-${++n}`)
  const limits = extra.wrapLimits?.(real) ?? real
  const seccompFile = seccompProgram(config.root, config.stateDir)
  const instanceDir = makeInstanceDir(config.runtimeDir)
  const prepared = await prepareRuntimeFiles(config, instanceDir)
  const files = extra.editFiles?.(prepared.files) ?? prepared.files
  const zygoteProblem = prepared.zygoteProblem
  const warnings: Array<Record<string, unknown>> = []
  const startingForkers = startForkers({
    config,
    hostUid: sandboxHostUid(config),
    seccompFile,
    instanceDir,
    files,
    zygoteProblem,
    capabilities: extra.zygoteCapabilities,
    wrapArgv: extra.wrapZygoteArgv,
    forkInto: limits.forkInto,
    warn: (msg, fields) => warnings.push({ msg, ...fields })
  })
  const forkers = await startingForkers.catch(async (err: Error) => {
    await limits.close() // its cgroups, made above: a daemon that refuses to start leaves none either
    rmSync(instanceDir, { recursive: true, force: true })
    throw err
  })
  const runner = new Runner({ config, limits, seccompFile, forkers: forkers.byRuntime, runtimeFiles: files, ...extra })
  t.teardown(async () => {
    await runner.close()
    await forkers.close()
    await limits.close()
    rmSync(instanceDir, { recursive: true, force: true })
  })
  return { runner, config, limits, warnings }
}

export interface Collected { result?: RunResult, error?: HearthError, logs: Array<[string, string]> }

/** Runs a call and collects its logs, its result or its error. */
export async function call (runner: Runner, req: Omit<RunRequest, 'onLog' | 'timeoutMs'> & { timeoutMs?: number }): Promise<Collected> {
  const logs: Array<[string, string]> = []
  try {
    const result = await runner.run({ timeoutMs: 10_000, ...req, onLog: (stream, line) => logs.push([stream, line]) })
    return { result, logs }
  } catch (err) {
    if (!(err instanceof HearthError)) throw err
    return { error: err, logs }
  }
}

/** /readyz's `pools` entry of python in `runner`. */
export function pythonPool (runner: Runner): LanguagePoolStats | undefined {
  return runner.stats().pools.find((p) => p.language === 'python')
}

/** A python call's value (its JSON result, parsed); throws when the call fails. */
export async function py (runner: Runner, code: string, functionKey?: string): Promise<any> {
  const r = await call(runner, { language: 'python', code, input: '{}', functionKey })
  if (r.result === undefined) throw new Error(`call failed: ${r.error?.code} ${r.error?.message}`)
  return JSON.parse(r.result.data)
}

export { waitFor } from './wait.js'
