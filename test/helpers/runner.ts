// A real Runner (real bwrap, real cgroups when writable) for tests.
import type { Test } from 'tap'
import { loadConfig, type Config, type Env } from '../../daemon/config.js'
import { Runner, type RunnerOptions, type RunRequest, type RunResult } from '../../daemon/pool/runner.js'
import { chooseLimitsBackend, limitsOf, type LimitsBackend } from '../../daemon/sandbox/limits/index.js'
import { seccompProgram } from '../../daemon/sandbox/seccomp.js'
import { HearthError } from '../../daemon/errors.js'

let n = 0

export interface TestRunner {
  runner: Runner
  config: Config
  limits: LimitsBackend
}

export async function startRunner (t: Test, env: Env = {}, extra: Partial<RunnerOptions> = {}): Promise<TestRunner> {
  const config = loadConfig({ POOL_MIN: '1', POOL_MAX: '4', TIMEOUT_SCRIPT: '10', ACQUIRE_TIMEOUT: '5', ...env })
  const limits = await chooseLimitsBackend(config.limitsBackend, limitsOf(config), `hearth-test-${process.pid}-${++n}`)
  const runner = new Runner({ config, limits, seccompFile: seccompProgram(config.root, config.stateDir), ...extra })
  t.teardown(async () => {
    await runner.close()
    await limits.close()
  })
  return { runner, config, limits }
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

export async function waitFor (check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
