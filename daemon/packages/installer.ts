// What npm and pip builds share: the result of a build, the build's setting
// (directories, limits, time), and running an installer's command in the
// build sandbox with its output collected, streamed and scrubbed of secrets.
import { spawn } from 'node:child_process'
import { chmod, chown, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { HearthError } from '../errors.js'
import type { SandboxLimits } from '../sandbox/limits/index.js'
import { killGroup } from '../sandbox/process.js'
import { buildSandboxArgv } from './build-sandbox.js'

/** What a build produced: the exact set (package → version), the lock, and the layer's address. */
export interface Resolved {
  readonly resolved: Readonly<Record<string, string>>
  readonly lock: string
  readonly hash: string
}

export interface InstallBuild {
  /** the layer being built (/build in the sandbox) */
  readonly buildDir: string
  /** the installer's download cache (/cache in the sandbox) */
  readonly cacheDir: string
  readonly limits: SandboxLimits
  readonly hostUid: number | null
  readonly timeoutMs: number
  readonly onOutput?: (line: string) => void
}

/** Secrets out of an installer's message: tokens and passwords in URLs. */
export function scrub (text: string): string {
  return text
    .replace(/(_authToken|_auth|_password|token)(\s*[=:]\s*)\S+/gi, '$1$2***')
    .replace(/\/\/[^/\s:@]+:[^/\s@]+@/g, '//***@')
}

/**
 * The operator's settings for an installer, as its own environment variables
 * (`pattern`: NPM_CONFIG_*, PIP_*, and proxies), and nothing else of the daemon's
 * environment; `fixed` wins over them.
 */
export function installerEnv (pattern: RegExp, fixed: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8' }
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (pattern.test(k) || /^(https?_proxy|no_proxy)$/i.test(k))) out[k] = v
  }
  return { ...out, ...fixed }
}

export interface InstallerRun {
  /** names the installer in errors: "npm install", "pip wheel" */
  readonly what: string
  readonly command: readonly string[]
  readonly env: Readonly<Record<string, string>>
  /** read-only binds beyond /usr: host paths the installer is configured to read */
  readonly binds: ReadonlyArray<{ src: string, dest: string }>
}

/**
 * A file the installer reads (package.json, a lock, requirements.txt), written
 * into the build directory and given to the build sandbox's uid: the daemon's
 * umask (the unit's is 0077) would leave it unreadable there.
 */
export async function writeInput (b: InstallBuild, name: string, text: string): Promise<void> {
  const file = join(b.buildDir, name)
  await writeFile(file, text)
  await chmod(file, 0o644)
  if (b.hostUid !== null) await chown(file, b.hostUid, b.hostUid)
}

/** Runs one installer command in the build sandbox; dependency_error with its output's tail when it fails or overruns BUILD_TIMEOUT. */
export async function runInstaller (b: InstallBuild, r: InstallerRun): Promise<void> {
  const argv = buildSandboxArgv({ limitsPrefix: b.limits.prefix, hostUid: b.hostUid, buildDir: b.buildDir, cacheDir: b.cacheDir, binds: r.binds, command: r.command })
  const output: string[] = []
  const code = await new Promise<number | string>((resolve) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...r.env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, detached: true })
    const timer = setTimeout(() => {
      killGroup(child)
      resolve('timeout')
    }, b.timeoutMs)
    for (const stream of [child.stdout, child.stderr] as Readable[]) {
      let partial = ''
      stream.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n')
        partial = lines.pop() ?? ''
        for (const line of lines) {
          const clean = scrub(line)
          output.push(clean)
          if (output.length > 200) output.shift()
          b.onOutput?.(clean)
        }
      })
    }
    child.on('error', (err) => { clearTimeout(timer); resolve(err.message) })
    child.on('exit', (c, signal) => { clearTimeout(timer); resolve(c ?? String(signal)) })
  })
  const tail = output.join('\n').slice(-2000)
  const tool = r.what.split(' ')[0] as string
  if (code === 'timeout') throw new HearthError('dependency_error', `the ${tool} build took longer than BUILD_TIMEOUT (${b.timeoutMs / 1000} s)`, { output: tail })
  if (code !== 0) throw new HearthError('dependency_error', `${r.what} failed (${String(code)})`, { output: tail })
}
