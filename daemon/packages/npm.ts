// npm in the build sandbox: `npm install` of an upload's dependencies, or
// `npm ci` of a recorded lock (another daemon, a rebuild), scripts never run.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { HearthError } from '../errors.js'
import type { SandboxLimits } from '../sandbox/limits/index.js'
import { buildSandboxArgv } from './build-sandbox.js'
import type { NpmDependencies } from './spec.js'

/** What a build produced: the exact set (package path → version), the lock, and the layer's address. */
export interface Resolved {
  readonly resolved: Readonly<Record<string, string>>
  readonly lock: string
  readonly hash: string
}

export interface NpmBuild {
  readonly buildDir: string
  readonly cacheDir: string
  readonly limits: SandboxLimits
  readonly hostUid: number | null
  readonly timeoutMs: number
  /** the installer's environment: PATH, HOME, and the operator's NPM_CONFIG_* */
  readonly env: Readonly<Record<string, string>>
  readonly onOutput?: (line: string) => void
}

/** npm as installed beside the node that runs hearth. */
export function npmCli (): string {
  const cli = join(dirname(dirname(process.execPath)), 'lib/node_modules/npm/bin/npm-cli.js')
  if (!existsSync(cli)) throw new HearthError('dependency_error', `npm is not installed beside ${process.execPath} (looked for ${cli})`)
  return cli
}

/** The operator's npm settings (NPM_CONFIG_REGISTRY, tokens, proxies) for the installer, and nothing else of the daemon's environment. */
export function installerEnv (env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', npm_config_cache: '/cache', npm_config_update_notifier: 'false' }
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && /^(npm_config_|https?_proxy$|no_proxy$)/i.test(k)) out[k] = v
  }
  out.npm_config_cache = '/cache'
  return out
}

/** Secrets out of an installer's message: tokens and passwords in URLs. */
export function scrub (text: string): string {
  return text
    .replace(/(_authToken|_auth|_password|token)(\s*[=:]\s*)\S+/gi, '$1$2***')
    .replace(/\/\/[^/\s:@]+:[^/\s@]+@/g, '//***@')
}

/** The exact set of a lock: every installed package, by its path under node_modules. */
export function resolvedOf (lockText: string): Resolved {
  const lock = JSON.parse(lockText) as { packages?: Record<string, { version?: string, integrity?: string }> }
  const resolved: Record<string, string> = {}
  const integrity: Array<[string, string, string]> = []
  for (const [path, p] of Object.entries(lock.packages ?? {})) {
    if (path === '' || p.version === undefined) continue
    const name = path.replace(/^node_modules\//, '').replace(/\/node_modules\//g, ' > ')
    resolved[name] = p.version
    integrity.push([name, p.version, p.integrity ?? ''])
  }
  integrity.sort(([a], [b]) => (a < b ? -1 : 1))
  const hash = createHash('sha256').update(JSON.stringify({ runtime: 'node', abi: process.versions.modules, packages: integrity })).digest('hex')
  return { resolved, lock: lockText, hash }
}

/** Installs `deps` (or, with `lock`, exactly that lock) into buildDir/node_modules. */
export async function npmInstall (b: NpmBuild, deps: NpmDependencies, lock?: string): Promise<Resolved> {
  await writeFile(join(b.buildDir, 'package.json'), JSON.stringify({ name: 'hearth-layer', private: true, dependencies: deps }, null, 2))
  if (lock !== undefined) await writeFile(join(b.buildDir, 'package-lock.json'), lock)
  const command = [process.execPath, npmCli(), lock === undefined ? 'install' : 'ci', '--ignore-scripts', '--no-audit', '--no-fund', '--omit=dev', '--loglevel=warn']
  const node = dirname(dirname(process.execPath))
  const argv = buildSandboxArgv({
    limitsPrefix: b.limits.prefix,
    hostUid: b.hostUid,
    buildDir: b.buildDir,
    cacheDir: b.cacheDir,
    binds: node.startsWith('/usr') ? [] : [{ src: node, dest: node }],
    command
  })
  const output: string[] = []
  const code = await new Promise<number | string>((resolve) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...b.env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, detached: true })
    const timer = setTimeout(() => {
      try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
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
  if (code === 'timeout') throw new HearthError('dependency_error', `the npm build took longer than BUILD_TIMEOUT (${b.timeoutMs / 1000} s)`, { output: tail })
  if (code !== 0) throw new HearthError('dependency_error', `npm ${lock === undefined ? 'install' : 'ci'} failed (${String(code)})`, { output: tail })
  return resolvedOf(await readFile(join(b.buildDir, 'package-lock.json'), 'utf8'))
}
