// npm in the build sandbox: `npm install` of an upload's dependencies, or
// `npm ci` of a recorded lock (another daemon, a rebuild), scripts never run.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createHash } from 'node:crypto'
import { HearthError } from '../errors.js'
import { installerEnv, runInstaller, writeInput, type InstallBuild, type Resolved } from './installer.js'
import type { NpmDependencies } from './spec.js'

/** npm as installed beside the node that runs hearth. */
export function npmCli (): string {
  const cli = join(dirname(dirname(process.execPath)), 'lib/node_modules/npm/bin/npm-cli.js')
  if (!existsSync(cli)) throw new HearthError('dependency_error', `npm is not installed beside ${process.execPath} (looked for ${cli})`)
  return cli
}

/** The operator's npm settings (NPM_CONFIG_REGISTRY, tokens, proxies): npm's environment, never its command line. */
export function npmEnv (env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return installerEnv(/^npm_config_/i, { npm_config_cache: '/cache', npm_config_update_notifier: 'false' }, env)
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

/** Installs `deps` (or, with `lock`, exactly that lock: the answer is the recorded lock's) into buildDir/node_modules. */
export async function npmInstall (b: InstallBuild, deps: NpmDependencies, lock?: string): Promise<Resolved> {
  await writeInput(b, 'package.json', JSON.stringify({ name: 'hearth-layer', private: true, dependencies: deps }, null, 2))
  if (lock !== undefined) await writeInput(b, 'package-lock.json', lock)
  const verb = lock === undefined ? 'install' : 'ci'
  const node = dirname(dirname(process.execPath))
  await runInstaller(b, {
    what: `npm ${verb}`,
    command: [process.execPath, npmCli(), verb, '--ignore-scripts', '--no-audit', '--no-fund', '--omit=dev', '--loglevel=warn'],
    env: npmEnv(),
    binds: node.startsWith('/usr') ? [] : [{ src: node, dest: node }]
  })
  return resolvedOf(lock ?? await readFile(join(b.buildDir, 'package-lock.json'), 'utf8'))
}
